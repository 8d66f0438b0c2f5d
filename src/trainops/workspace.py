"""A user's repository as the commands see it: root, source of desired state, config, lock.

Validation needs the lock to check training inputs offline (DESIGN §5), and revisions need it to
resolve trainer versions (§3); this module wires them so that `validate`, `plan` and `apply` see
exactly the same problems and revisions.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace
from dataclasses import field as _field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainops.errors import InvalidInput, Problem, UsageError
from trainops.jobglobs import pathspecs, selects
from trainops.manifest import Config, Job, ReplicateSpec, revision
from trainops.repo import (
    CONFIG_FILE,
    LOCK_FILE,
    Commit,
    Source,
    WorkingTree,
    git_run,
    linked_problem,
    tree_of,
)
from trainops.validate import Validation, validate_source

if TYPE_CHECKING:
    from trainops.data import Package
    from trainops.lockfile import Lock
    from trainops.plan import Desired, Limits
    from trainops.workdir import Workdir


def find_root(root: Path) -> Path:
    root = root.resolve()
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory")
    return root


@dataclass
class Workspace:
    root: Path
    source: Source
    validation: Validation
    lock: Lock | None = None
    packages: dict[str, dict[str, Package]] = _field(default_factory=dict)  # job -> key -> package
    # job -> its shipped workdir, when the packaging rule leaves files of it out (for the plan)
    workdirs: dict[str, Workdir] = _field(default_factory=dict)
    _desired: Desired | None = _field(default=None, init=False, repr=False, compare=False)

    @property
    def config(self) -> Config:
        return self.validation.config

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        ref: str | None = None,
        on_config: Callable[[Path, Config], None] | None = None,
    ) -> Workspace:
        """The working tree (`ref=None`), or the manifests of commit `ref`. `on_config` is
        called with the repository root and its config once the config is valid, before the
        manifests are read."""
        root = find_root(root)
        source: Source = WorkingTree(root) if ref is None else Commit.resolve(root, ref)
        early = None if on_config is None else functools.partial(on_config, root)
        validation, lock, packages, workdirs = _validate(source, early)
        ws = cls(root, source, validation, lock, packages, workdirs)
        ws.watch_credentials()
        return ws

    def watch_credentials(self) -> None:
        """Tell the scrubber which variables this repository makes credentials: the Replicate
        `token_env` of its config, and every name a job passes through `spec.env`."""
        from trainops import scrub

        names = {self.config.providers.replicate.token_env}
        for job in self.validation.jobs.values():
            names.update(getattr(job.spec, "env", None) or ())  # spec.env: local and ray jobs
        scrub.watch(names)

    @property
    def commit(self) -> str:
        return self.source.sha if isinstance(self.source, Commit) else ""

    @property
    def tree(self) -> str:
        """The applied commit's tree id ("" for the working tree): what a run executes."""
        return tree_of(self.root, self.commit) if self.commit else ""

    def desired(self) -> Desired:
        """Each valid job's target (its revision hashed once: the workspace does not change)."""
        if self._desired is None:
            self._desired = self._compute_desired()
        return self._desired

    def _compute_desired(self) -> Desired:
        from trainops.plan import Desired, Target  # not loaded by `validate`, which plans nothing

        v = self.validation
        targets = {
            name: Target(
                job,
                revision(
                    job.spec,
                    self.trainer(job.spec),
                    {k: p.digest for k, p in self.packages.get(name, {}).items()},
                ),
                self.packages.get(name, {}),
            )
            for name, job in v.jobs.items()
        }
        changed_at: dict[str, float] = {}
        if self.config.policy.max_concurrent_runs is not None:  # only the slot queue needs it
            by_file = _last_changed(
                self.root,
                self.commit or "HEAD",
                {job.file for job in v.jobs.values()},
                pathspecs(self.config.jobs),
            )
            changed_at = {n: by_file[j.file] for n, j in v.jobs.items() if j.file in by_file}
        return Desired(targets, frozenset(v.invalid), v.complete, changed_at, v.sets)

    def trainer(self, spec: object) -> str | None:
        """The trainer as `owner/name:version`, its version resolved through the lock."""
        if not isinstance(spec, ReplicateSpec):
            return None
        resolved = self.lock.resolve(spec.trainer) if self.lock is not None else None
        return resolved or spec.trainer

    def limits(self) -> Limits:
        from trainops.plan import Limits

        providers = self.config.providers
        return Limits(
            self.config.policy,
            dict(self.config.prices_usd_per_second),
            # the services that stop a run at the timeout trainops sends (DESIGN §10)
            timeouts={
                "huggingface": providers.huggingface.default_timeout,
                # StoppingCondition.MaxRuntimeInSeconds: sent always (budget.max_duration or this)
                "sagemaker": providers.sagemaker.default_timeout,
            },
        )

    def dirty_manifests(self) -> list[str]:
        """Manifest, config and lock files whose working-tree content differs from HEAD:
        changed, deleted, or new and selected by the `jobs` globs."""
        patterns = self.config.jobs
        # Ask git about the folders the globs start from, and filter here: a pathspec per
        # manifest made git match 10,000 pathspecs against 10,000 files.
        specs = pathspecs(patterns)
        scope = [CONFIG_FILE, LOCK_FILE, *specs] if specs else []
        proc = git_run(
            ["status", "--porcelain", "-z", "--untracked-files=all", "--", *scope], self.root
        )
        entries = iter(proc.stdout.split(b"\0"))
        dirty: set[str] = set()
        for entry in entries:
            if len(entry) < 4:
                continue
            paths = [entry[3:].decode(errors="replace")]
            if b"R" in entry[:2] or b"C" in entry[:2]:  # a rename: its source path follows
                paths.append(next(entries, b"").decode(errors="replace"))
            dirty.update(p for p in paths if p in (CONFIG_FILE, LOCK_FILE) or selects(patterns, p))
        return sorted(dirty)


def _last_changed(root: Path, ref: str, files: set[str], specs: list[str]) -> dict[str, float]:
    """Commit time of the last commit changing each file, from one `git log` walk over the
    folders the globs start from: a pathspec per file overflowed the argument list (ARG_MAX)
    at 100,000 manifests."""
    if not files:
        return {}
    proc = git_run(["log", "--format=%x00%x01%ct", "--name-only", "-z", ref, "--", *specs], root)
    found: dict[str, float] = {}
    when, previous = 0.0, None
    # Fields: "", "\x01<time>", "\n<first name>", "<name>", ..., "", "\x01<time>", ...: a header
    # follows an empty field, which no file name is.
    for field in proc.stdout.decode(errors="replace").split("\0"):
        if previous == "" and field.startswith("\x01"):
            when = float(field[1:] or 0)
        else:
            name = field.removeprefix("\n")
            if name in files and name not in found:
                found[name] = when
        previous = field
    return found


def validate_workspace(root: Path, source: Source | None = None) -> Validation:
    return _validate(source or WorkingTree(find_root(root)))[0]


def load_lock(source: Source) -> tuple[Lock | None, list[Problem]]:
    """trainops.lock, when the repository has one."""
    linked = linked_problem(source, LOCK_FILE)
    if linked is not None:
        return None, [linked]
    raw = source.read(LOCK_FILE)
    if raw is None:
        return None, []
    from trainops.lockfile import Lock

    try:
        return Lock.loads(raw.decode("utf-8", errors="replace"), LOCK_FILE), []
    except InvalidInput as exc:
        return None, exc.problems


def _package_data(source: Source, validation: Validation) -> dict[str, dict[str, Package]]:
    """Package every job's `spec.data` (DESIGN §18); a job whose data cannot be packaged, or is
    over its provider's limit, is invalid: refused at validate/plan time, before any upload."""
    from trainops.data import packages as package_all
    from trainops.data import problem_for
    from trainops.providers.limits import DATA_LIMITS

    done: dict[str, dict[str, Package]] = {}
    bad: dict[str, list[Problem]] = {}
    with_data = [(n, j) for n, j in validation.jobs.items() if j.spec.data]
    for name, job in sorted(with_data, key=lambda item: item[0]):
        provider = job.spec.provider
        if provider not in DATA_LIMITS:
            bad[name] = [
                job.doc.problem(
                    ("spec", "data"),
                    f"provider {provider!r} cannot take spec.data yet",
                    "upload the data yourself and put its URL in spec.input",
                )
            ]
            continue
        found, errors = package_all(source, job.spec.data, DATA_LIMITS[provider])
        if errors:
            bad[name] = [problem_for(job.doc, key, exc) for key, exc in errors]
        else:
            done[name] = found
    for name, problems in bad.items():
        validation.jobs.pop(name, None)
        validation.invalid.add(name)
        validation.problems = sorted([*validation.problems, *problems])
    return done


def _check_shipped_workdirs(source: Source, validation: Validation) -> dict[str, Workdir]:
    """A Ray job's workdir travels to the cluster as one package (runtime_env.working_dir): one
    over the provider's limit is refused here, at validate/plan time, before any intent. Returns
    each shipped workdir that leaves files out (the plan lists them, DESIGN §13b)."""
    from trainops.providers.limits import WORKDIR_LIMITS
    from trainops.workdir import WorkdirError, check_size, files

    seen: dict[str, Workdir | WorkdirError] = {}  # jobs often share one workdir: read it once
    shown: dict[str, Workdir] = {}
    shipped = [(n, j) for n, j in validation.jobs.items() if j.spec.provider in WORKDIR_LIMITS]
    for name, job in sorted(shipped, key=lambda item: item[0]):
        limit = WORKDIR_LIMITS[job.spec.provider]
        workdir = getattr(job.spec, "workdir", None)
        path = (workdir if workdir is not None else posixpath.dirname(job.file)).strip("/")
        if path not in seen:
            try:
                check_size(path, files(source, path).size, limit)
                seen[path] = files(source, path, scan=True)
            except WorkdirError as exc:
                seen[path] = exc
        found = seen[path]
        if isinstance(found, WorkdirError):
            validation.jobs.pop(name, None)
            validation.invalid.add(name)
            where = ("spec", "workdir") if workdir is not None else ("spec",)
            problem = job.doc.problem(where, found.message, found.hint)
            validation.problems = sorted([*validation.problems, problem])
        elif found.left_out:
            shown[name] = found
    return shown


def _validate(
    source: Source, on_config: Callable[[Config], None] | None = None
) -> tuple[Validation, Lock | None, dict[str, dict[str, Package]], dict[str, Workdir]]:
    lock, lock_problems = load_lock(source)
    seen: dict[str, Config] = {}
    providers: dict[str, Any] = {}  # one instance per provider name, however many jobs use it

    def remember(config: Config) -> None:
        seen["config"] = config
        if on_config is not None:
            on_config(config)

    def check_input(job: Job) -> list[Problem]:
        if isinstance(source, WorkingTree):
            # `validate` reads the working tree, which is what each provider's own offline
            # `check()` looks at (workdirs, commands on disk): every provider says its word.
            return provider_problems(source.root, seen["config"], lock, job, providers)
        return _schema_problems(lock, job)

    validation = validate_source(source, check_input=check_input, on_config=remember)
    workdirs = _check_shipped_workdirs(source, validation)
    if lock_problems:
        validation.problems = sorted([*validation.problems, *lock_problems])
        validation.complete = False
    return validation, lock, _package_data(source, validation), workdirs


def provider_problems(
    root: Path, config: Config, lock: Lock | None, job: Job, built: dict[str, Any] | None = None
) -> list[Problem]:
    """The offline `check()` of the job's provider (providers/base.py), each problem located
    in the job's manifest and naming the job. No network: a check only reads the lock and disk.
    `built` keeps the provider instances already made (one per name for a whole validation)."""
    name = str(job.spec.provider)
    built = {} if built is None else built
    if name not in built:
        from trainops.providers import REGISTRY

        factory = REGISTRY.get(name)
        if factory is None:
            return []
        built[name] = factory(root, config, lock)
    found = built[name].check(job, lock)
    return [p if p.job else replace(p, job=job.name) for p in found]


def _schema_problems(lock: Lock | None, job: Job) -> list[Problem]:
    """A commit's manifests (plan, apply, serve): a Replicate job's input against its locked
    schema, which needs nothing of the working tree (a provider's disk checks would read the
    working tree, not the commit)."""
    spec = job.spec
    if not isinstance(spec, ReplicateSpec):
        return []
    entry = lock.entry(spec.trainer) if lock is not None else None
    if entry is None:
        if ":" in spec.trainer:
            return []  # pinned in the manifest and not locked: the service checks input
        return [
            job.doc.problem(
                ("spec", "trainer"),
                f"trainer {spec.trainer} has no version and trainops.lock does not pin it",
                "run `trainops lock` and commit trainops.lock, or write owner/name:version",
            )
        ]
    from trainops.lockfile import check_input as against_schema

    return against_schema(
        spec.input,
        entry.schema,
        job.doc.locate,
        job.file,
        job=job.name,
        trainer=spec.trainer.partition(":")[0],
        data=tuple(spec.data),
    )
