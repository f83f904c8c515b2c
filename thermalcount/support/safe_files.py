"""Writing output files without ever destroying what is already there.

Every command that writes a file (record, simulate, import, export, train) goes through
this module, so the rules hold everywhere:

* The new content is written to a hidden temporary file beside the target
  (``.NAME.writing-PID-xxxxxx``) and renamed over the target only when complete. A refusal
  or an error at any point leaves the target byte-identical and removes the temporary file.
* Opening the target for writing is never how a conflict is found: ``h5py.File(path, "w")``
  truncates the file *before* HDF5's lock refuses, which once wiped a recording that a
  recorder had open. Instead :func:`publish` takes the same ``flock`` HDF5 uses on the
  existing target (without truncating it) and renames only while holding it.
* Only regular files are outputs: a FIFO would block, a device would be written into.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from thermalcount.errors import OutputPathError

IN_USE = "another program has it open (a recorder, a replay or a count); stop it first or choose another file"


def special_kind(mode: int):
    """'a FIFO', 'a device', ... for a non-regular file mode; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def lookup(path, error=OutputPathError):
    """``os.stat(path)``, or None when it does not exist. Any other OSError (a name too
    long, a symlink loop, no permission) becomes one line of ``error``: ``Path.exists()``
    raises those, and they ended commands with "internal error"."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as problem:
        raise error(f"cannot use {path}: {problem.strerror or problem}") from None
    except ValueError:  # a NUL byte in the path
        raise error(f"cannot use {path!r}: the path contains a NUL byte") from None


def check_output_kind(path) -> bool:
    """Raise OutputPathError unless ``path`` is missing or a regular file; return whether it exists."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder checks say what is wrong
        return False
    except OSError as error:
        raise OutputPathError(f"cannot write {path}: {error.strerror}") from None
    except ValueError:
        raise OutputPathError(f"cannot write {path!r}: the path contains a NUL byte") from None
    kind = special_kind(mode)
    if kind == "a directory":
        raise OutputPathError(f"{path} is a directory; give a file name such as rec.h5")
    if kind is not None:
        raise OutputPathError(f"cannot write {path}: it is {kind}, not a file; choose a regular file")
    return True


def check_output_path(path, *, overwrite: bool = False, append: bool = False, can_append: bool = False,
                      other_name: bool = False, in_place: bool = False) -> bool:
    """Raise OutputPathError unless ``path`` may be written; return whether it exists.

    The one "already exists" check of every command that writes a file: ``path`` must be
    missing, or a regular file the user allowed to be replaced (``overwrite``) or added to
    (``append``). ``can_append``: the message offers --append too; ``other_name``: it ends
    with ", or choose another name". ``in_place`` (the frame store): an existing file is
    written where it is, so it must be writable and not in use, and no folder is created,
    so the folder must exist. Cheap and touches nothing: commands call it before opening a
    sensor or hours of work, and again where they write.
    """
    path = Path(path)
    if append and overwrite:
        raise OutputPathError("choose either --append or --overwrite, not both")
    exists = check_output_kind(path)  # refuses directories, FIFOs, devices
    if exists and not (append or overwrite):
        options = "pass --append to add frames to it or --overwrite" if can_append else "pass --overwrite"
        alternative = ", or choose another name" if other_name else ""
        raise OutputPathError(f"{path} already exists; {options} to replace it{alternative}")
    if in_place and exists:
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"cannot write {path}: permission denied")
        check_not_in_use(path)  # another program's lock, found without opening it for writing
    elif in_place:
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise OutputPathError(f"cannot write {path}: {parent} is a file, not a folder; choose another --out")
        if not parent.is_dir():
            raise OutputPathError(f"cannot write {path}: folder {parent} does not exist; create it or "
                                  "choose another --out")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputPathError(f"cannot write {path}: permission denied in {parent}")
    return exists


def same_file(first, second) -> bool:
    """True when both paths name the same file (also through a symlink or a hard link)."""
    try:
        a, b = os.stat(first), os.stat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def refuse_same_file(source, out, what: str = "input") -> None:
    """OutputPathError when writing ``out`` would replace the ``source`` being read."""
    if same_file(source, out):
        raise OutputPathError(f"{out} is the {what} {source} itself; writing it would replace the {what}, "
                              "choose another --out")


def resolved(target) -> Path:
    """The file a symlink points to: replacing ``latest.h5 -> /mnt/usb/rec.h5`` writes on the
    stick, as opening it would, instead of swapping the link for a file on the SD card."""
    target = Path(target)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def temporary_path(target) -> Path:
    """A hidden, unique name beside ``target`` (same folder: same file system for the rename)."""
    target = resolved(target)
    # Shortened so that a name near the 255-byte limit still has a temporary name. os.urandom
    # is what secrets.token_hex reads; `import secrets` (hmac, hashlib, random) cost ~5 ms of
    # every model load, which reads a path through this module (2-core VM, loaded, 2026-12-06).
    return target.with_name(f".{target.name[:100]}.writing-{os.getpid()}-{os.urandom(3).hex()}")


def remove_quietly(path) -> None:
    """Delete a temporary file. Never raises: it runs inside error handlers, and a second
    exception there would replace the one-line error the user needs to see."""
    if path is None:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def exclusive_lock(path) -> Iterator[None]:
    """Hold HDF5's own lock (``flock`` exclusive) on an existing ``path`` without modifying it.

    OutputPathError when another program holds it: a recorder writing it, a replay or a
    count reading it. A missing file needs no lock.
    """
    try:
        # O_NONBLOCK: never hang on a FIFO that appeared since the kind check.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield
        return
    except OSError as error:
        raise OutputPathError(f"cannot write {path}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputPathError(f"cannot write {path}: {IN_USE}") from None
            # File systems without flock (some network mounts): nothing to check against.
        yield
    finally:
        os.close(fd)


def check_not_in_use(path) -> None:
    """Refuse early, before any work, when another program has ``path`` open."""
    with exclusive_lock(path):
        pass


def publish(temporary, target) -> None:
    """Rename the finished ``temporary`` over ``target``, unless another program has it open.

    The lock is held across the rename, so no HDF5 program can open the old file in between.
    On refusal or error the temporary file is removed and the target is untouched.
    """
    try:
        if check_output_kind(target):
            # The replacement keeps the permissions the user gave the old file.
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        with exclusive_lock(target):
            os.replace(temporary, resolved(target))
    except OutputPathError:
        remove_quietly(temporary)
        raise
    except OSError as error:
        remove_quietly(temporary)
        raise OutputPathError(f"cannot write {target}: {error.strerror or error}; choose another --out") from None


@contextmanager
def atomic_output(target) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on any error it goes."""
    temporary = temporary_path(target)
    try:
        yield temporary
    except BaseException:
        remove_quietly(temporary)
        raise
    publish(temporary, target)


def write_bytes_atomically(target, data: bytes) -> Path:
    """Write ``data`` to ``target`` through a temporary file (fsynced before the rename)."""
    target = Path(target)
    try:
        with atomic_output(target) as temporary:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as error:
        if isinstance(error, OutputPathError):
            raise
        raise OutputPathError(f"cannot write {target} ({error.strerror or error}); choose another --out") from None
    return target


class RollbackFile:
    """A file object for h5py's ``fileobj`` driver that can undo everything since the last commit.

    HDF5 writing through its own (sec2) driver turns a failed write (EFBIG from ``ulimit -f``
    or FAT32's 4 GiB limit, EDQUOT, EIO from a pulled stick) into half-written metadata and,
    measured with HDF5 2.0, a segmentation fault at close. Through this object every write
    is Python code: before bytes of the last committed state are overwritten their old
    content is kept, and the first failed write switches to discarding all further writes so
    HDF5 never sees an error (it cannot recover from one). :meth:`rollback` then puts the
    old bytes back and cuts the file to its committed size, which is byte for byte the file
    as of the last :meth:`commit`: every flushed frame opens again.
    """

    def __init__(self, raw):
        self.raw = raw  # an unbuffered binary file ("r+b"/"x+b", buffering=0)
        self.fd = raw.fileno()
        self.failed = None  # the first OSError, once a write has failed
        self._undo = []  # (offset, old bytes) of committed bytes overwritten since the commit
        self._committed = os.fstat(self.fd).st_size

    # -- what h5py's fileobj driver calls
    def seek(self, offset, whence=os.SEEK_SET):
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell()

    def read(self, size=-1):
        return self.raw.read(size)

    def readinto(self, buffer):
        return self.raw.readinto(buffer)

    def write(self, data):
        view = memoryview(data).cast("B")
        if self.failed is not None:
            return len(view)  # discarded: the rollback restores the committed state anyway
        position = self.raw.tell()
        if position < self._committed:
            end = min(position + len(view), self._committed)
            self._undo.append((position, os.pread(self.fd, end - position, position)))
        done = 0
        try:
            while done < len(view):
                written = self.raw.write(view[done:])
                if not written:
                    raise OSError(errno.EIO, "write made no progress")
                done += written
        except OSError as error:
            self.failed = error
            self.raw.seek(position + len(view))
        return len(view)

    def truncate(self, size=None):
        if self.failed is not None:
            return size
        if size is not None and size < self._committed:
            # HDF5 only shrinks a file it is rewriting; keep the cut-off bytes to restore.
            self._undo.append((size, os.pread(self.fd, self._committed - size, size)))
        try:
            return self.raw.truncate(size)
        except OSError as error:
            self.failed = error
            return size

    def flush(self):
        pass  # unbuffered; durability comes from commit()'s fsync

    # -- the writer's side
    def commit(self) -> None:
        """Make the current content the state to roll back to (fsync first). OSError if it fails."""
        if self.failed is not None:
            raise self.failed
        try:
            os.fsync(self.fd)
        except OSError as error:
            self.failed = error
            raise
        self._committed = os.fstat(self.fd).st_size
        self._undo.clear()

    def stop_writing(self, error: OSError = None) -> None:
        """Discard every further write (before closing HDF5 after a failure)."""
        if self.failed is None:
            self.failed = error or OSError(errno.EIO, "stopped after an error")

    def rollback(self) -> bool:
        """Restore the committed state; False if the disk refused even that (e.g. pulled stick)."""
        try:
            for offset, old in reversed(self._undo):
                os.pwrite(self.fd, old, offset)
            os.ftruncate(self.fd, self._committed)
            os.fsync(self.fd)
        except OSError:
            return False
        self._undo.clear()
        return True

    def close(self) -> None:
        try:
            self.raw.close()  # also releases the flock
        except OSError:
            pass


def open_locked(path, mode: str):
    """Open ``path`` unbuffered ("r+b" or "x+b") and take HDF5's exclusive lock on it."""
    raw = open(path, mode, buffering=0)
    try:
        fcntl.flock(raw.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raw.close()
            raise OutputPathError(f"cannot write {path}: {IN_USE}") from None
        # File systems without flock (some network mounts): go on unlocked, as HDF5 would.
    return raw
