"""`snippets build` stopped by the file system: a full disk, a read-only file system and a
directory it may not write. Each is real, not simulated: a small tmpfs (mounted in a private
mount namespace with `unshare`, so nothing outlives the test) filled to the brim and then
remounted read-only, and a build run as another user (`setpriv`, when the tests run as root,
where permissions do not apply; a read-only mode otherwise). Each time: one line saying what
happened, exit 1, the index in service unchanged (`snippets check` passes on it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from api_helpers import SEEDS
from server_helpers import SNIPPETS

from index.build import build


def namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    return bool(unshare) and subprocess.run([unshare, "-rm", "true"],
                                            capture_output=True).returncode == 0


SCRIPT = r"""
set -u
mount -t tmpfs -o size=64m,mode=0755 tmpfs "$MNT"
"$SNIPPETS" build --seeds "$SEEDS" --index "$MNT/index" > "$OUT/good.out" 2>&1
echo $? > "$OUT/good.rc"
readlink "$MNT/index/CURRENT" > "$OUT/good.current"
# Full: the file system shrunk to what it holds plus a little, less than a build writes.
used=$(du -sk "$MNT" | cut -f1)
mount -o remount,size=$((used + 200))k "$MNT"
"$SNIPPETS" build --seeds "$SEEDS" --index "$MNT/index" > "$OUT/full.out" 2> "$OUT/full.err"
echo $? > "$OUT/full.rc"
readlink "$MNT/index/CURRENT" > "$OUT/full.current"
"$SNIPPETS" check --index "$MNT/index" > /dev/null 2>&1
echo $? > "$OUT/full.check"
# Read-only.
mount -o remount,size=64m,ro "$MNT"
"$SNIPPETS" build --seeds "$SEEDS" --index "$MNT/index" > "$OUT/ro.out" 2> "$OUT/ro.err"
echo $? > "$OUT/ro.rc"
readlink "$MNT/index/CURRENT" > "$OUT/ro.current"
"$SNIPPETS" check --index "$MNT/index" > /dev/null 2>&1
echo $? > "$OUT/ro.check"
"""


def read(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8").strip()


def assert_one_clear_line(stderr: str, words: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and words in lines[0], stderr
    assert "the index in service is unchanged" in lines[0]
    assert "Traceback" not in stderr


@pytest.mark.skipif(not namespaces_work(), reason="unshare -rm (a private mount namespace) is "
                    "not available here: the disk-full and read-only tests need a tmpfs")
def test_a_full_disk_and_a_read_only_file_system_are_one_line_and_change_nothing(tmp_path):
    out, mnt = tmp_path / "out", tmp_path / "mnt"
    out.mkdir()
    mnt.mkdir()
    env = dict(os.environ, MNT=str(mnt), OUT=str(out), SNIPPETS=str(SNIPPETS), SEEDS=str(SEEDS))
    subprocess.run(["unshare", "-rm", "bash", "-c", SCRIPT], env=env, check=True, timeout=120)
    assert read(out, "good.rc") == "0", read(out, "good.out")
    serving = read(out, "good.current")
    assert serving.startswith("gen-")
    assert read(out, "full.rc") == "1", read(out, "full.err")
    assert_one_clear_line(read(out, "full.err"), "no space left on the device")
    assert read(out, "ro.rc") == "1", read(out, "ro.err")
    assert_one_clear_line(read(out, "ro.err"), "the file system is read-only")
    for case in ("full", "ro"):
        assert read(out, f"{case}.current") == serving
        assert read(out, f"{case}.check") == "0"


def test_a_directory_the_build_may_not_write_is_one_line_and_changes_nothing():
    # Outside pytest's private temporary directory, which another user could not even enter.
    with tempfile.TemporaryDirectory(prefix="snippets-perm-") as parent:
        os.chmod(parent, 0o755)
        index_dir = Path(parent) / "index"
        serving = build(SEEDS, index_dir).generation.name
        command = [str(SNIPPETS), "build", "--seeds", str(SEEDS), "--index", str(index_dir)]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: permissions cannot be tested")
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        else:
            os.chmod(index_dir, 0o555)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        finally:
            os.chmod(index_dir, 0o755)
        assert result.returncode == 1, result.stderr
        assert_one_clear_line(result.stderr, "permission denied")
        assert os.readlink(index_dir / "CURRENT") == serving
        check = subprocess.run([str(SNIPPETS), "check", "--index", str(index_dir)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
