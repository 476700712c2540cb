"""The cache of a loaded partition, for both homeworks: one .npy per array, memory-mapped on reload.

    arrays = cache.load_or_build(cache_dir, key, build)   # build() -> {"features": ..., ...}

A cache folder is named <partition>-<options>-<contents>: digests of the options (root, kind of
dataset, normalisation, context, ...) and of the files' contents (mfcc, transcripts, and the
training files global statistics come from). It is written under a hidden, unique name and
renamed into place in one step, with manifest.json (the key; each array's shape, dtype, size and
block checksums) written last. A folder whose manifest does not match its files is rebuilt, with
a notice, never served. Processes that build the same cache at once (a notebook and a
command-line run, DDP ranks) all succeed: the first rename wins and the others use that folder,
which holds the same arrays. A new build removes the older caches of its partition and options
(their files have changed since); a process that has one memory-mapped keeps its arrays (POSIX
frees the space when it is done), and hidden folders, builds in progress, are left alone unless
an hour old.

The contents fingerprint: name, size and modification time miss a same-size edit whose mtime
was restored (cp -p, rsync -a and unzip all restore it), and a sample of each file (its first and
last blocks) misses an edit in between. So it is a CRC-32 of every byte of every file. That
reads all the files (about 1 GB/s on a 2-core VM, a tenth of a build), so it is done only when
the files' metadata (size, mtime, ctime, inode) changed since it was last computed, and otherwise
taken from cache_dir/fingerprints.json: the system sets ctime on every write, copy or timestamp
change and no tool can set it back, so unchanged metadata means unchanged bytes. A reload costs
one stat per file; after a re-extraction, one read of the files, and the cache is reused when the
bytes are the same. (On Windows st_ctime is the creation time: an in-place rewrite that restores
the mtime goes unseen there.)

The cached arrays check themselves: the manifest holds a CRC-32 of every BLOCK bytes of each
.npy. A load checks SAMPLE_BLOCKS blocks of each (the first, the last, and random ones, so that
repeated loads cover the file): all of a small cache, SAMPLE_BLOCKS MiB of a large one.
verify="full" checks every block (about 1 s per GB).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import numpy as np

from .corpus import make_dir

VERSION = 4
BLOCK = 1 << 20  # bytes per checksum
SAMPLE_BLOCKS = 16  # checked on each load, per array
VERIFY = ("sample", "full")
MANIFEST = "manifest.json"
FINGERPRINTS = "fingerprints.json"
LEFTOVER_AGE = 3600  # seconds: a hidden folder this old is a crashed build's, not one in progress


def _read_json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def fingerprint(files, cache_dir: Path) -> str:
    """A digest of the files' contents (each folder/name, size and CRC-32), recomputed only when
    their metadata changed (see above)."""
    h = hashlib.sha1()
    for p in files:
        s = p.stat()
        h.update(f"{p.parent.name}/{p.name}:{s.st_size}:{s.st_mtime_ns}:{s.st_ctime_ns}:{s.st_ino};".encode())
    stamp, known = h.hexdigest(), _read_json(cache_dir / FINGERPRINTS)
    if stamp not in known:
        h = hashlib.sha1()
        for p in files:
            data = p.read_bytes()
            h.update(f"{p.parent.name}/{p.name}:{len(data)}:{zlib.crc32(data)};".encode())
        known = {**dict(list(known.items())[-99:]), stamp: h.hexdigest()}  # the 100 latest
        make_dir(cache_dir, "cache_dir")
        tmp = cache_dir / f".{FINGERPRINTS}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(known))
        os.replace(tmp, cache_dir / FINGERPRINTS)  # in one step: another process may be reading it
    return known[stamp]


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(cache_dir: Path, key) -> Path:
    options = key["options"]
    return Path(cache_dir) / f"{options['partition']}-{_digest(options)}-{_digest(key['contents'])}"


def dataset_key(cache_dir, kind: str, root: Path, partition: str, files, stats_files, options: dict) -> dict:
    """The key of a dataset's cache: every option that shapes its arrays, and the contents of
    every file they are read from (mfcc, transcripts, and the training files of global statistics)."""
    cache_dir = Path(cache_dir).expanduser()
    options = {"version": VERSION, "kind": kind, "root": str(Path(root).resolve()), "partition": partition,
               **options}
    contents = {"files": fingerprint(files, cache_dir),
                "stats files": fingerprint(stats_files, cache_dir) if stats_files else None}
    return {"options": options, "contents": contents}


def block_checksums(path: Path) -> list[int]:
    """CRC-32 of each BLOCK bytes of the file."""
    out = []
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            out.append(zlib.crc32(block))
    return out


def _check_blocks(path: Path, crcs: list[int], verify: str) -> None:
    n = len(crcs)
    if verify == "full" or n <= SAMPLE_BLOCKS:
        blocks = range(n)
    else:  # the ends (header, last rows) and random blocks between: loads in turn cover the file
        blocks = sorted({0, n - 1, *random.sample(range(1, n - 1), SAMPLE_BLOCKS - 2)})
    with open(path, "rb") as f:
        for b in blocks:
            f.seek(b * BLOCK)
            if zlib.crc32(f.read(BLOCK)) != crcs[b]:
                raise ValueError(f"{path.name} does not match its checksum at bytes {b * BLOCK}-{(b + 1) * BLOCK}")


def _read(d: Path, key, verify: str = "sample") -> dict:
    """The arrays of cache folder d, memory-mapped; an error unless it is a complete cache of key."""
    manifest = json.loads((d / MANIFEST).read_text())
    if manifest["key"] != json.loads(json.dumps(key)):
        raise ValueError("its manifest is of other files or options")
    arrays = {}
    for name, meta in manifest["arrays"].items():
        path = d / f"{name}.npy"
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise ValueError(f"{path.name} has {size} bytes, not {meta['bytes']}")
        _check_blocks(path, meta["crc32"], verify)
        # mmap "c" (copy-on-write) so torch.from_numpy gets a writable array and copies nothing
        a = np.load(path, mmap_mode="c", allow_pickle=False)
        if [list(a.shape), str(a.dtype)] != [meta["shape"], meta["dtype"]]:
            raise ValueError(f"{path.name} holds {a.dtype} {a.shape}, not {meta['dtype']} {meta['shape']}")
        arrays[name] = a
    return arrays


def load(cache_dir: Path, key, verbose: bool = False, verify: str = "sample") -> dict | None:
    """The cached arrays of key; None when there are none, or (with a notice) when they cannot be served."""
    if verify not in VERIFY:
        raise ValueError(f"cache_verify={verify!r}; choose one of {VERIFY}")
    d = cache_path(cache_dir, key)
    if not d.exists():
        return None
    try:
        arrays = _read(d, key, verify)
    except Exception as e:  # whatever is wrong (a file missing, truncated, damaged): rebuild
        why = f"{Path(e.filename).name}: {e.strerror}" if isinstance(e, OSError) and e.filename else e
        print(f"phonemekit: the cache {d} is incomplete or damaged ({why}); rebuilding it")
        return None
    if verbose:
        print(f"phonemekit: loaded {key['options']['partition']} from cache {d}")
    return arrays


def save(cache_dir: Path, key, arrays: dict) -> dict | None:
    """Write the arrays as the cache of key; return them memory-mapped from it (None if that fails)."""
    cache_dir = Path(cache_dir)
    d = cache_path(cache_dir, key)
    make_dir(cache_dir, "cache_dir")
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.build-", dir=cache_dir))
    try:
        manifest = {"key": key, "arrays": {}}
        for name, a in arrays.items():
            np.save(tmp / f"{name}.npy", a)
            path = tmp / f"{name}.npy"  # read back from the page cache: the checksums are of what was written
            manifest["arrays"][name] = {"shape": list(a.shape), "dtype": str(a.dtype),
                                        "bytes": path.stat().st_size, "crc32": block_checksums(path)}
        (tmp / MANIFEST).write_text(json.dumps(manifest))  # last: a folder without it is never served
        _publish(tmp, d, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # already gone when it was renamed into place
    _prune(d)
    try:
        return _read(d, key)
    except Exception:  # replaced by another process in between: the caller serves its own arrays
        return None


def load_or_build(cache_dir, key, build, verbose: bool = False, verify: str = "sample") -> dict:
    """The arrays of key: from cache_dir when a sound cache is there, else build() and cache them
    (served memory-mapped from the cache, not twice in memory). Without cache_dir, build()."""
    if not cache_dir:
        return build()
    cache_dir = Path(cache_dir).expanduser()
    arrays = load(cache_dir, key, verbose, verify)
    if arrays is None:
        built = build()
        arrays = save(cache_dir, key, built) or built
    return arrays


def _publish(tmp: Path, d: Path, key) -> None:
    """Rename the finished build tmp to d in one step. A complete cache already at d (another
    process finished first, with the same arrays) is kept; a damaged one is moved aside first."""
    for _ in range(5):
        try:
            os.rename(tmp, d)  # atomic, and refused while d exists
            return
        except OSError:
            pass
        try:
            _read(d, key, verify="full")  # all of it: a sample could miss the damage a rebuild is for
            return
        except FileNotFoundError:  # d itself is gone (moved aside by another process): try again
            if not d.exists():
                continue
        except Exception:
            pass
        aside = d.with_name(f".{d.name}.damaged-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(d, aside)  # of several processes, one moves it
        except OSError:
            continue
        try:
            _read(aside, key)  # complete after all: another process replaced the damaged one
        except Exception:  # just now, and may be opening it; _prune removes it in an hour
            shutil.rmtree(aside, ignore_errors=True)


def _prune(d: Path) -> None:
    """Remove the older caches of d's partition and options, and hidden leftovers of crashed builds."""
    prefix = d.name.rsplit("-", 1)[0] + "-"  # <partition>-<options>-
    for p in d.parent.iterdir():
        try:
            if p.name.startswith(prefix) and p != d:
                shutil.rmtree(p)
            elif p.name.startswith("." + prefix) and time.time() - p.stat().st_mtime > LEFTOVER_AGE:
                shutil.rmtree(p)
        except OSError:  # removed by another process meanwhile, or in use (Windows)
            pass
