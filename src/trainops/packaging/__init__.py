"""The one rule for what may leave the machine (DESIGN §13b), for `spec.data` and every workdir a
provider ships (Ray's `runtime_env.working_dir`).

A package is built from what git holds, never from whatever lies on disk: the applied commit's
tree for `apply` and `serve`, the index's files read from the working tree for `plan` and
`validate` (DESIGN §3: one view of the repository, previewed before committing). Untracked
files never travel: a CI step's `gha-creds-*.json` or a stray `x-key.json` is not in git. From
those files the rule leaves out credential-shaped names (`refusal_by_name`), links (never
followed), submodules, trainops' and tools' folders and what `.gitignore` excludes, and, while
streaming, any file whose content looks like a credential (the scrubber's token shapes, a PEM
private key, a JSON `private_key`): every exclusion is returned with its reason, for the plan.

Files are read in chunks (`CHUNK`): memory stays bounded whatever the data's size.

`files.py` lists what may go and what stays, `refusal.py` judges names and content, `archive.py`
streams and writes the zip.
"""
