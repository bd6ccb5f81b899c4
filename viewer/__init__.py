"""`avatar view`: the avatar talking live in a window (shipped as `avatar.viewer`; the library never imports it).

scene.py    what is shown (avatar, source motion, controls), no window: tested on its own
worker.py   the render thread
sound.py    playback (the clock) and capture, through miniaudio
sources.py  speech from a file or typed text; recording to mp4
live.py     the microphone through the live audio path into the scene, and its clock
window.py   the Dear PyGui window
app.py      `avatar view`: checks, then the window
"""
