"""Rendering a trained avatar: frames from motion codes and head poses, to video."""
