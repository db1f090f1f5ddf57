"""Checkpoints survive the process, and the machine, that wrote them.

While a job runs, files in its local checkpoint folder are copied to the artifact store
every few seconds (only those whose size or modification time changed) and once more when
it ends; a retried job — after a crash, an eviction, the spot-interruption case — gets them
back in a fresh folder before its script starts, and can resume from them.
"""

from __future__ import annotations

import threading
from pathlib import Path

from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import NotFound


class CheckpointSync:
    def __init__(self, artifacts: ArtifactStore, prefix: str, local: Path, interval: float) -> None:
        self.artifacts = artifacts
        self.prefix = prefix
        self.local = local
        self.interval = interval
        self._seen: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def restore(self) -> bool:
        """Download stored checkpoints into the local folder; True when there were any."""
        self.local.mkdir(parents=True, exist_ok=True)
        try:
            self.artifacts.get_dir(self.prefix, self.local)
        except NotFound:
            return False
        for path in self.local.rglob("*"):
            if path.is_file():
                stat = path.stat()
                self._seen[path.relative_to(self.local).as_posix()] = (
                    stat.st_size,
                    stat.st_mtime_ns,
                )
        return bool(self._seen)

    def upload_changed(self) -> int:
        count = 0
        for path in sorted(self.local.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(self.local).as_posix()
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            if self._seen.get(relative) == signature:
                continue
            try:
                self.artifacts.put_file(f"{self.prefix}/{relative}", path)
            except (FileNotFoundError, NotFound):
                continue  # the script replaced it meanwhile; the next pass catches up
            self._seen[relative] = signature
            count += 1
        return count

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.upload_changed()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.upload_changed()
