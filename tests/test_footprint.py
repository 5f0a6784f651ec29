"""What an idle supervisor keeps in memory for a container's whole life (issue 5: RSS no higher than
the lightest Python peer). The figures are the benchmark's business (`make bench`); this checks the
causes: native libraries procrun has no use for must never be mapped into a running supervisor."""

from pathlib import Path

from tests.harness import Procrun

# OpenSSL (asyncio's optional TLS, hashlib), decimal (fractions), psutil (only for status, memory
# limits), the compression libraries (python-dotenv -> tempfile -> shutil).
UNWANTED = ("libssl", "libcrypto", "_ssl.", "_hashlib.", "_decimal.", "_psutil", "_bz2.", "_lzma.")


def _mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {Path(line.split()[-1]).name for line in maps if "/" in line}


def test_an_idle_supervisor_maps_no_library_it_does_not_use(tmp_path: Path) -> None:
    with Procrun(tmp_path, "web: sleep 600\nworker: sleep 600\n") as procrun:
        procrun.wait_for_line(r"process.running .*process=web.1")
        procrun.wait_for_line(r"process.running .*process=worker.1")
        mapped = _mapped_files(procrun.proc.pid)
        assert "libc.so.6" in mapped  # the listing is real
        assert not {name for name in mapped if name.startswith(UNWANTED)}


def test_a_dotenv_file_is_still_read(tmp_path: Path) -> None:
    # python-dotenv is imported only when there is a file to parse.
    (tmp_path / ".env").write_text("GREETING=hello from .env\n")
    with Procrun(tmp_path, 'web: echo "$GREETING"; sleep 600\n') as procrun:
        procrun.wait_for_line(r"web.1 +\| hello from .env")
