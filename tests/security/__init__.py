"""Attacks as tests: what a pull request, a state branch, a job or a provider can make trainops do.

The trust model (DESIGN §13, docs/security.md), which every test here plays against:
- A pull request controls the files of the repository, nothing else. Its manifests are read by
  the same rules whatever the source (working tree or commit); a symlink is never followed and
  nothing outside the repository is read, run or written (workdir, runs_dir, jobs globs).
- Credentials come from the environment and go only to endpoints the environment names
  (`REPLICATE_BASE_URL`, `GITHUB_API_URL`, ...): no file chooses a host or another service's token.
- The state branch is input, to be protected (only the workflow's token pushes it): a forged
  state file can never start, cancel or upload what git does not say.
- A job's output, a provider's answer and a file name are data: escaped for the medium (terminal,
  markdown, workflow commands), scrubbed of secrets, bounded in size, never acted on unchecked.
- Read-only commands (validate, plan, status, logs) never start, signal or write anything.
"""
