"""The data layer over an avatar folder: frames, masks, motion codes, head poses, camera and plate.

Training, eval, rendering, export and the viewer read a preprocessed folder through `AvatarData`;
`read_rgb` is the one frame reader (preprocessing stages use it too); `masks` turns a frame's labels and
matte into what training compares against.
"""
