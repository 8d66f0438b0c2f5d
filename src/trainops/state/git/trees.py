"""The state commit's tree, built here: only the directories on the changed paths are read.

A save applies its changes (path -> bytes, or None to delete) to the base commit's tree. Unchanged
subtrees are reused by sha; the new blobs and trees are hashed here and handed to git as one pack
(git's own transfer format), stored loose or kept as a pack as `git push` would
(transfer.unpackLimit). A path that would be both a file and a directory is refused.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping, Sequence

from trainops.errors import StateError
from trainops.state.git.plumbing import Plumbing

__all__ = ["PackObject", "plan_tree", "write_objects"]

_FILE_MODE = 0o100644
_TREE_MODE = 0o040000
_PACK_TREE, _PACK_BLOB = 2, 3  # object type codes of the pack format
_UNPACK_LIMIT = 100  # git's transfer.unpackLimit default

Entry = tuple[int, bytes]  # (mode, binary sha) of one tree entry
Tree = dict[bytes, Entry]  # name -> entry
PackObject = tuple[int, bytes]  # (pack type, data) of one object to write


def plan_tree(
    git: Plumbing, base: str, wanted: Mapping[str, bytes | None]
) -> tuple[str, str, list[PackObject]]:
    """Compute the tree of `base` with `wanted` applied, reading only the directories on
    the changed paths: unchanged subtrees are reused by sha. Returns the base and new root
    tree shas and the objects to write as (pack type, data), children before parents."""
    files_in: dict[str, dict[str, bytes | None]] = {"": {}}
    subdirs_in: dict[str, set[str]] = {"": set()}
    writes_under: set[str] = set()
    for path, data in wanted.items():
        parent, _, name = path.rpartition("/")
        files_in.setdefault(parent, {})[name] = data
        child = parent
        while child:
            up = child.rpartition("/")[0]
            files_in.setdefault(child, {})
            subdirs_in.setdefault(up, set()).add(child)
            if data is not None:
                writes_under.add(child)
            child = up
    clash = sorted(set(wanted) & set(files_in))
    if clash:
        raise StateError(f"state change writes both a file and a directory at {clash[0]!r}")

    dirs = [d for d in sorted(files_in) if d]
    base_trees: dict[str, Tree] = {}
    base_root = _hash_object(b"tree", b"")  # the empty tree stands for "never written"
    if base:
        found = git.cat_batch([f"{base}^{{tree}}", *(f"{base}:{d}" for d in dirs)])
        if found[0] is None:
            raise StateError(f"state version {base!r} does not exist in this repository")
        base_root = _hash_object(b"tree", found[0][1])
        for d, obj in zip(["", *dirs], found, strict=True):
            if obj is not None and obj[0] == b"tree":
                base_trees[d] = _parse_tree(obj[1])

    objects: list[PackObject] = []

    def build(d: str, old_sha: bytes | None) -> bytes | None:
        entries = dict(base_trees.get(d, {}))
        for name, data in files_in[d].items():
            path = f"{d}/{name}" if d else name
            key = name.encode()
            existing = entries.get(key)
            if existing is not None and existing[0] == _TREE_MODE:
                raise StateError(f"state path {path!r} is a directory, not a file")
            if data is None:
                entries.pop(key, None)
                continue
            sha = _hash_object(b"blob", data)
            if existing is None or existing[1] != sha:
                entries[key] = (_FILE_MODE, sha)
                objects.append((_PACK_BLOB, data))
        for child in sorted(subdirs_in.get(d, ())):
            key = child.rpartition("/")[2].encode()
            existing = entries.get(key)
            if existing is not None and existing[0] != _TREE_MODE:
                if child in writes_under:
                    raise StateError(f"state path {child!r} is a file, not a directory")
                continue  # deleting below a file: nothing there to delete
            sub = build(child, existing[1] if existing else None)
            if sub is None:
                entries.pop(key, None)
            else:
                entries[key] = (_TREE_MODE, sub)
        if d and not entries:
            return None
        data = _tree_data(entries)
        sha = _hash_object(b"tree", data)
        if sha != old_sha:
            objects.append((_PACK_TREE, data))
        return sha

    new_root = build("", base_root)
    assert new_root is not None  # the root is kept even when empty
    return base_root.hex(), new_root.hex(), objects


def write_objects(git: Plumbing, objects: Sequence[PackObject]) -> None:
    """Store new objects with one git process, fed a pack built here. Like `git push`
    (transfer.unpackLimit), a few objects are stored loose and many are kept as one pack:
    a bulk write then costs one file instead of one per object."""
    if not objects:
        return
    if len(objects) < _UNPACK_LIMIT:
        git.run("unpack-objects", "-q", input=_pack(objects))
    else:
        git.run("index-pack", "--stdin", input=_pack(objects))


def _hash_object(kind: bytes, data: bytes) -> bytes:
    return hashlib.sha1(b"%s %d\0" % (kind, len(data)) + data).digest()


def _tree_data(entries: Tree) -> bytes:
    # git orders entries by name, comparing a tree's name as if it ended with "/".
    ordered = sorted(entries.items(), key=lambda e: e[0] + b"/" if e[1][0] == _TREE_MODE else e[0])
    return b"".join(b"%o %s\0%s" % (mode, name, sha) for name, (mode, sha) in ordered)


def _pack(objects: Sequence[tuple[int, bytes]]) -> bytes:
    """A version 2 pack of whole (undeltified) objects: git's own transfer format."""
    chunks = [b"PACK", struct.pack(">II", 2, len(objects))]
    for kind, data in objects:
        size = len(data)
        header = bytearray()
        byte = kind << 4 | size & 0x0F
        size >>= 4
        while size:
            header.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        header.append(byte)
        chunks += [bytes(header), zlib.compress(data, 1)]
    body = b"".join(chunks)
    return body + hashlib.sha1(body).digest()


def _parse_tree(data: bytes) -> Tree:
    entries: Tree = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        entries[data[space + 1 : nul]] = (int(data[pos:space], 8), data[nul + 1 : nul + 21])
        pos = nul + 21
    return entries
