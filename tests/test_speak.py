from helpers import run_cli
from media import read_audio


def test_speak_writes_speech(tmp_path):
    out = tmp_path / "s.wav"
    result = run_cli("speak", "Hello there.", "--out", out)
    assert result.returncode == 0, result.stderr
    audio, rate = read_audio(out)
    assert len(audio) / rate > 0.5 and abs(audio).max() > 0.05
    bad = run_cli("speak", "Hello", "--out", tmp_path / "x.wav", "--voice", "no-such-voice")
    assert bad.returncode == 2 and "voice" in bad.stderr
