"""A small FUSE filesystem that forgets, at a power cut, everything that was not synced.

It models a disk with a volatile write cache, as strictly as POSIX allows:

- a write changes only the file's live bytes; `fsync`/`fdatasync` of that file makes
  its current bytes (and size) durable;
- creating, removing or renaming a name changes only the directory's live entries;
  `fsync` of the directory makes its current entries durable (SQLite does exactly this
  after it creates a WAL or journal);
- a power cut throws every live change away and keeps only what was durable.

Run it as a process (the test starts and stops it through `PowerCutDisk`):

    python tests/support/powercut_fs.py MOUNTPOINT [--state FILE]

It mounts in the foreground and reads commands on stdin, one a line:

    cut FILE   drop everything unsynced, refuse every later operation (EIO, as a dead
               disk), write the surviving image to FILE (pickle), answer "cut <json>"
    stats      answer "stats <json>" (writes, fsyncs, bytes written and synced)
    ro on|off  every change fails with EROFS from now on (as ext4 after errors=remount-ro,
               which, unlike `mount -o remount,ro`, works with files open for writing)

A new process started with `--state FILE` mounts that surviving image: a reboot.
"""
from __future__ import annotations

import errno
import itertools
import json
import os
import pickle
import stat
import sys
import threading
import time

import mfusepy as fuse


class Node:
    """A file or a directory, with its live and its durable contents."""

    def __init__(self, is_dir: bool, mode: int):
        self.is_dir = is_dir
        self.mode = mode
        self.mtime = time.time_ns()
        self.data = bytearray()      # file: what reads see now
        self.synced = b""            # file: what survives a power cut
        self.entries: dict[str, Node] = {}         # directory: names now
        self.synced_entries: dict[str, Node] = {}  # directory: names that survive


def _surviving(root: Node) -> Node:
    """The image a power cut leaves: durable names and durable bytes only."""
    seen: dict[int, Node] = {}

    def copy(node: Node) -> Node:
        if id(node) in seen:
            return seen[id(node)]
        kept = Node(node.is_dir, node.mode)
        kept.mtime = node.mtime
        seen[id(node)] = kept
        if node.is_dir:
            kept.entries = {name: copy(child) for name, child in node.synced_entries.items()}
            kept.synced_entries = dict(kept.entries)
        else:
            kept.synced = bytes(node.synced)
            kept.data = bytearray(node.synced)
        return kept

    return copy(root)


class PowerCutFS(fuse.Operations):
    use_ns = True

    def __init__(self, root: Node | None = None):
        self.root = root or Node(True, stat.S_IFDIR | 0o755)
        self._mutex = threading.RLock()
        self.handles: dict[int, Node] = {}
        self.next_fh = itertools.count(1)
        self.dead = False
        self.readonly = False
        self.counts = {"writes": 0, "bytes_written": 0, "fsyncs": 0, "dir_fsyncs": 0}

    # -- helpers ---------------------------------------------------------------------
    def _alive(self) -> None:
        if self.dead:
            raise fuse.FuseOSError(errno.EIO)

    def _writable(self) -> None:
        self._alive()
        if self.readonly:
            raise fuse.FuseOSError(errno.EROFS)

    def _lookup(self, path: str) -> Node:
        node = self.root
        for part in filter(None, path.split("/")):
            if not node.is_dir or part not in node.entries:
                raise fuse.FuseOSError(errno.ENOENT)
            node = node.entries[part]
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        head, name = os.path.split(path.rstrip("/"))
        parent = self._lookup(head or "/")
        if not parent.is_dir:
            raise fuse.FuseOSError(errno.ENOTDIR)
        return parent, name

    def _node(self, path: str | None, fh) -> Node:
        if fh and fh in self.handles:
            return self.handles[fh]
        return self._lookup(path)

    def _handle(self, node: Node) -> int:
        fh = next(self.next_fh)
        self.handles[fh] = node
        return fh

    # -- the control channel -------------------------------------------------------
    def init(self, path):
        threading.Thread(target=self._serve_commands, daemon=True).start()

    def _serve_commands(self) -> None:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "cut":
                answer = self.cut(words[1])
                print("cut " + json.dumps(answer), flush=True)
            elif words[0] == "ro":
                with self._mutex:
                    self.readonly = words[1] == "on"
                print("ro " + json.dumps({"readonly": self.readonly}), flush=True)
            elif words[0] == "stats":
                with self._mutex:
                    print("stats " + json.dumps(self.counts), flush=True)

    def cut(self, state_file: str) -> dict:
        with self._mutex:
            self.dead = True
            unsynced = sum(len(n.data) for n in self._files(self.root, "entries"))
            image = _surviving(self.root)
            kept = sum(len(n.data) for n in self._files(image, "entries"))
            with open(state_file + ".tmp", "wb") as out:
                pickle.dump(image, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(state_file + ".tmp", state_file)
            return dict(self.counts, live_bytes=unsynced, surviving_bytes=kept)

    def _files(self, node: Node, attr: str):
        for child in getattr(node, attr).values():
            if child.is_dir:
                yield from self._files(child, attr)
            else:
                yield child

    # -- attributes and names ------------------------------------------------------------
    def getattr(self, path, fh=None):
        with self._mutex:
            self._alive()
            node = self._node(path, fh)
            size = 4096 if node.is_dir else len(node.data)
            return {
                "st_mode": node.mode, "st_nlink": 2 if node.is_dir else 1, "st_size": size,
                "st_uid": os.getuid(), "st_gid": os.getgid(), "st_blocks": (size + 511) // 512,
                "st_atime": node.mtime, "st_mtime": node.mtime, "st_ctime": node.mtime,
            }

    def readdir(self, path, fh):
        with self._mutex:
            self._alive()
            return [".", "..", *self._lookup(path).entries]

    def mkdir(self, path, mode):
        with self._mutex:
            self._writable()
            parent, name = self._parent(path)
            if name in parent.entries:
                raise fuse.FuseOSError(errno.EEXIST)
            parent.entries[name] = Node(True, stat.S_IFDIR | mode)
            return 0

    def rmdir(self, path):
        with self._mutex:
            self._writable()
            parent, name = self._parent(path)
            node = self._lookup(path)
            if node.entries:
                raise fuse.FuseOSError(errno.ENOTEMPTY)
            del parent.entries[name]
            return 0

    def create(self, path, mode, fi=None):
        with self._mutex:
            self._alive()
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                self._writable()
                node = parent.entries[name] = Node(False, stat.S_IFREG | (mode & 0o7777))
            return self._handle(node)

    def open(self, path, flags):
        with self._mutex:
            self._alive()
            node = self._lookup(path)
            if self.readonly and flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
                raise fuse.FuseOSError(errno.EROFS)
            if flags & os.O_TRUNC:
                node.data = bytearray()
            return self._handle(node)

    def opendir(self, path):
        with self._mutex:
            self._alive()
            return self._handle(self._lookup(path))

    def release(self, path, fh):
        with self._mutex:
            self.handles.pop(fh, None)
            return 0

    def releasedir(self, path, fh):
        return self.release(path, fh)

    def unlink(self, path):
        with self._mutex:
            self._writable()
            parent, name = self._parent(path)
            if name not in parent.entries:
                raise fuse.FuseOSError(errno.ENOENT)
            del parent.entries[name]
            return 0

    def rename(self, old, new):
        with self._mutex:
            self._writable()
            old_parent, old_name = self._parent(old)
            new_parent, new_name = self._parent(new)
            node = old_parent.entries.pop(old_name)
            new_parent.entries[new_name] = node
            return 0

    def chmod(self, path, mode):
        with self._mutex:
            self._writable()
            node = self._lookup(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        with self._mutex:
            self._alive()
            self._lookup(path).mtime = time.time_ns()
            return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 19,
                "f_bavail": 1 << 19, "f_files": 1 << 16, "f_ffree": 1 << 15, "f_namemax": 255}

    # -- contents -------------------------------------------------------------------------
    def read(self, path, size, offset, fh):
        with self._mutex:
            self._alive()
            return bytes(self._node(path, fh).data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self._mutex:
            self._writable()
            node = self._node(path, fh)
            end = offset + len(data)
            if len(node.data) < offset:
                node.data.extend(b"\0" * (offset - len(node.data)))
            node.data[offset:end] = data
            node.mtime = time.time_ns()
            self.counts["writes"] += 1
            self.counts["bytes_written"] += len(data)
            return len(data)

    def truncate(self, path, length, fh=None):
        with self._mutex:
            self._writable()
            node = self._node(path, fh)
            if length < len(node.data):
                del node.data[length:]
            else:
                node.data.extend(b"\0" * (length - len(node.data)))
            return 0

    def flush(self, path, fh):
        return 0  # close() is not a sync

    def fsync(self, path, datasync, fh):
        with self._mutex:
            self._writable()
            node = self._node(path, fh)
            node.synced = bytes(node.data)
            self.counts["fsyncs"] += 1
            return 0

    def fsyncdir(self, path, datasync, fh):
        with self._mutex:
            self._writable()
            node = self._node(path, fh)
            node.synced_entries = dict(node.entries)
            self.counts["dir_fsyncs"] += 1
            return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mountpoint")
    parser.add_argument("--state", help="a surviving image written by `cut`, to boot from")
    args = parser.parse_args(argv)
    root = None
    if args.state and os.path.exists(args.state):
        with open(args.state, "rb") as saved:
            root = pickle.load(saved)
    fuse.FUSE(PowerCutFS(root), args.mountpoint, foreground=True, nothreads=False,
              fsname="powercut")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
