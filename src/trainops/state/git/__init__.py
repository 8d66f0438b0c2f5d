"""The git state backend: state files on a branch that is never checked out (DESIGN §9).

Every write is git plumbing run through GitPython: new blobs and trees go into the object store
(`unpack-objects`/`index-pack`), then one `commit-tree`, then a ref update or a push, so the
user's working tree, index and HEAD are never touched. The compare-and-swap of §8 is
`git update-ref <ref> <new> <old>` without a remote, and a push that must fast-forward with one.

By noun: `store.py` (`GitStateStore`, the `StateStore` face), `branch.py` (the ref: fetch,
compare-and-swap, push), `trees.py` (a save's tree and pack), `files.py` (listing and reading
the state files, with bounds), `plumbing.py` (every git process). Other modules import
`GitStateStore` from here.
"""

from trainops.state.git.store import DEFAULT_AUTHOR, DEFAULT_BRANCH, GitStateStore

__all__ = ["DEFAULT_AUTHOR", "DEFAULT_BRANCH", "GitStateStore"]
