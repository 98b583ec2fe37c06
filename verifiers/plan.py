"""Planning: what is computed, where, and how much, decided before anything is differentiated.

:func:`make_plan` checks the settings against the data, builds the model, refuses work that is
too large to finish (it would look like a hang), and decides:

- **the check points** (:func:`check_points`): the start, the optimum where one is known, random
  points and the model's extreme points. The random points go where hand formulas break: they
  come in pairs of opposite signs; their sign patterns are chosen so that every pair of
  parameters is seen with all four combinations of signs (every orthant, for a few parameters);
  and each parameter's magnitudes are spread evenly, on a log scale, over six decades around its
  scale, so that a formula wrong only far out, only near zero or only in a thin band is met
  there. The extreme points drive the model to the data's extremes (a saturated σ, softmax or
  tanh), where clipped or approximated hand formulas go wrong;
- **which engines run**, and each engine's budget: an engine whose share is expected to take
  longer than the time limit is checked at the start only, has its descent capped or its Hessian
  skipped, or is skipped, with a note. The estimates come from fixed rates, not timings, so the
  same run gets the same plan.

Nothing here computes a derivative: :mod:`verifiers.compute` does, and :mod:`verifiers.judge`
compares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verifiers.compare import Tolerance
from verifiers.data import DataError, Dataset
from verifiers.engines import ENGINE_NAMES, EngineUnavailable, planning_facts, row
from verifiers.models import MODELS, Model, Optimum
from verifiers.models.user import UserLossError
from verifiers.results import Check, CheckPoint, Coverage, PointKind, Trust
from verifiers.settings import LIMITS, Settings, UsageError, check_settings
from verifiers.words import listing

__all__ = [
    "DECADES",
    "Budget",
    "Plan",
    "build_model",
    "check_points",
    "make_plan",
    "moved_off_kink",
]

# The random points' magnitudes span 10^DECADES[0] .. 10^DECADES[1] times each parameter's scale.
DECADES = (-4.0, 2.0)
# How many random points are also checked with the line moved through the data's centre.
ANCHORED = 4
# The points near the optimum: how far from it, as shares of each parameter's scale.
NEAR_SHARES = (3e-1, 3e-2, 3e-3, 3e-4)


@dataclass(frozen=True)
class Budget:
    """How much one engine computes: the first `points` check points (all, or the start only),
    a descent of `iterations` steps, a Hessian or not; `notes` say why when it is less."""

    points: int
    iterations: int
    hessian: bool
    notes: tuple[str, ...] = ()


@dataclass
class Plan:
    """Everything decided before the engines run."""

    data: Dataset
    settings: Settings
    model: Model
    lr: float
    tolerance: Tolerance
    start: np.ndarray
    optimum: Optimum
    points: list[CheckPoint]
    coverage: Coverage
    engines: list[str]  # the engines that will run, in the registry's order
    skipped: dict[str, str]  # engine -> why it does not run
    budgets: dict[str, Budget]
    hessians: bool  # the model is small enough for Hessians
    formula: Callable[..., Any] | None = None
    formula_label: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def hessian_point(self) -> int:
        """Where the Hessians are compared: the optimum when known (the stability bound's
        home), else the start."""
        if self.model.constant_hessian or self.optimum.theta is None:
            return 0
        return next(i for i, p in enumerate(self.points) if p.kind is PointKind.OPTIMUM)


def build_model(settings: Settings, data: Dataset, loss: Callable[..., Any] | None = None) -> Model:
    """The model the settings ask for, bound to `data` (DataError if it cannot use the data)."""
    if loss is not None:
        from verifiers.models.user import UserLossModel

        return UserLossModel(data, loss, settings.loss or "the given loss", settings.seed)
    return MODELS[settings.model](data, settings.options, settings.seed)


def make_plan(
    data: Dataset,
    settings: Settings,
    formula: Callable[..., Any] | None = None,
    loss: Callable[..., Any] | None = None,
) -> Plan:
    """Check the settings against the data and decide the points, engines and budgets.

    Raises :class:`UsageError` for bad settings, an engine asked for by name that cannot run, or
    too much work; :class:`~verifiers.data.DataError` for data the model cannot use.
    """
    check_settings(settings, ENGINE_NAMES)
    if loss is not None and settings.model != "mse":
        raise UsageError(
            f"--loss replaces the model: it cannot be combined with --model {settings.model}"
        )
    model = build_model(settings, data, loss)
    lr = settings.lr if settings.lr is not None else type(model).default_lr
    _check_work(settings, data)
    start = _start(settings, model)
    optimum = model.optimum()
    _check_data_magnitudes(model, optimum)
    candidates, coverage = check_points(
        model, start, optimum.theta, settings.points, settings.seed, data.dtype
    )
    points, notes = _finite_points(model, candidates)
    plan = Plan(
        data=data,
        settings=settings,
        model=model,
        lr=lr,
        tolerance=Tolerance.for_dtype(data.dtype, data.rows, settings.rtol, settings.atol),
        start=points[0].theta,
        optimum=optimum,
        points=points,
        coverage=coverage,
        engines=[],
        skipped={},
        budgets={},
        hessians=model.size <= LIMITS.hessian_parameters,
        formula=formula,
        formula_label=(f"--manual {settings.manual}" if settings.manual else "the given formula"),
        notes=[*model.notes(), *notes],
    )
    if optimum.theta is None and optimum.note:
        plan.notes.append(optimum.note)
    if not plan.hessians:
        plan.notes.append(
            f"Hessians skipped: {model.size:,} parameters make a {model.size:,}×{model.size:,} "
            f"matrix (at most {LIMITS.hessian_parameters:,} parameters are analysed)"
        )
    _choose_engines(plan)
    return plan


# ---- bounding the work --------------------------------------------------------------------------
def _check_work(settings: Settings, data: Dataset) -> None:
    """Refuse a run whose size alone makes it take too long (it would look like a hang)."""
    steps = data.rows * settings.iterations
    if steps > LIMITS.point_steps:
        raise UsageError(
            f"--iterations {settings.iterations:,} over {data.rows:,} rows is {steps:.3g} "
            f"row-steps per engine, more than the {LIMITS.point_steps:.3g} this tool runs; "
            f"use at most {int(LIMITS.point_steps // data.rows):,} iterations"
        )
    checks = data.rows * (settings.points + 2)
    if checks > LIMITS.point_checks:
        raise UsageError(
            f"--points {settings.points:,} over {data.rows:,} rows is {checks:.3g} row-checks "
            f"per engine, more than the {LIMITS.point_checks:.3g} this tool runs; use at most "
            f"{max(int(LIMITS.point_checks // data.rows) - 2, 2):,} points"
        )


def _start(settings: Settings, model: Model) -> np.ndarray:
    if settings.start is None:
        return model.start()
    if not model.linear:
        raise UsageError(f"--start applies to the (b, w) models, not to {model.name}")
    start = np.asarray(settings.start, dtype=np.float64).reshape(-1)
    if start.size != model.size:
        names = ",".join(model.labels())
        raise UsageError(
            f"--start needs {model.size} values ({names}) for {model.data.features} "
            f"feature{'s' if model.data.features != 1 else ''}, got {start.size}"
        )
    return start


def _sizes(model: Model, theta: np.ndarray) -> np.ndarray:
    """Σ|terms| of the loss and every gradient component, times N: the sums engines form."""
    with np.errstate(all="ignore"):
        scales = model.scales_at(theta)
    return np.concatenate([[scales.loss], scales.gradient]) * model.data.rows


def _limits(model: Model) -> tuple[float, float]:
    """The largest sum that fits the dtype (with room), and the smallest product that keeps its
    digits (below the smallest normal number divided by ε, underflow has eaten some)."""
    info = np.finfo(model.data.dtype)
    return float(info.max) / 16, float(info.tiny) / float(info.eps)


def _check_data_magnitudes(model: Model, optimum: Optimum) -> None:
    """Refuse data whose sums overflow the dtype, or whose products underflow it.

    Engines add up N terms before dividing by N, so the sums, not the means, must fit; and a
    value below the smallest normal number divided by ε has lost digits to underflow, so no
    engine could be judged fairly on it.
    """
    data = model.data
    largest, smallest = _limits(model)
    reference = optimum.theta if optimum.theta is not None else np.zeros(model.size)
    try:
        values = _sizes(model, reference)
    except UserLossError:
        return  # a user's loss that is not finite at the optimum is refused at the start
    peak = max(float(np.abs(data.X).max()), float(np.abs(data.y).max()))
    if not (np.isfinite(values).all() and values.max() < largest):
        raise DataError(
            data.path,
            f"values up to {peak:.3g} are too large: the sums of their squares overflow "
            f"{data.dtype} (rescale the data"
            + (", or use --dtype float64)" if data.dtype == np.float32 else ")"),
        )
    nonzero = values[values > 0]
    if nonzero.size and nonzero.min() < smallest * data.rows:
        raise DataError(
            data.path,
            f"values are too small (largest {peak:.3g}): their products fall below "
            f"{data.dtype}'s normal range, where rounding loses digits (rescale the data)",
        )


def _finite_points(model: Model, points: list[CheckPoint]) -> tuple[list[CheckPoint], list[str]]:
    """The points where the loss and its sums are finite and fit the dtype.

    The start must be such a point (a start where the loss overflows is refused); a random or
    extreme point that is not is left out, with a note: far out, a loss may overflow where the
    check has nothing to compare.
    """
    largest, _ = _limits(model)
    kept, dropped = [], []
    for point in points:
        try:
            values = _sizes(model, point.theta)
            fits = bool(np.isfinite(values).all() and values.max() < largest)
        except UserLossError:
            if point.kind is PointKind.START:
                raise
            fits = False
        if fits:
            kept.append(point)
        elif point.kind in (PointKind.START, PointKind.OPTIMUM):
            shown = ",".join(f"{v:g}" for v in point.theta[:10])
            raise UsageError(
                f"--start {shown}: the loss there overflows {model.data.dtype}; start nearer "
                "the data's scale"
            )
        else:
            dropped.append(point.label)
    notes = []
    if dropped:
        notes.append(
            f"{len(dropped)} of the {len(points)} check points left out ({_few(dropped)}): the "
            f"loss or its sums are not finite in {model.data.dtype} there"
        )
    return kept, notes


def _few(labels: list[str]) -> str:
    return ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")


# ---- the check points ---------------------------------------------------------------------------
def check_points(
    model: Model,
    start: np.ndarray,
    optimum: np.ndarray | None,
    count: int,
    seed: int,
    dtype: np.dtype,
) -> tuple[list[CheckPoint], Coverage]:
    """The start, the optimum (where known), `count` random points and the model's extremes.

    See the module docstring for where they go. Every engine sees exactly the same θ's,
    already rounded to the data's dtype.
    """
    rng = np.random.default_rng(seed)
    size = start.size
    scale = model.parameter_scale(start, optimum)
    points = [CheckPoint("start", start, PointKind.START)]
    if optimum is not None:
        points.append(CheckPoint("optimum", optimum, PointKind.OPTIMUM))
    pairs, single = divmod(count, 2)
    signs, every_orthant = _sign_patterns(pairs + single, size, rng)
    exponents = _spread(pairs + single, size, rng)
    random = []
    for k in range(pairs + single):
        theta = signs[k] * scale * 10.0 ** exponents[k]
        random.append(theta)
        if k < pairs:
            random.append(-theta)  # the same magnitudes, every sign flipped
    for k, theta in enumerate(random):
        points.append(CheckPoint(f"point {k + 1}", theta, PointKind.RANDOM))
    # Four of them again with the line through the data's centre (the (b, w) models).
    moved = [model.anchored(theta) for theta in random[: 2 * ANCHORED : 2]]
    anchored = [theta for theta in moved if theta is not None]
    for k, theta in enumerate(anchored):
        points.append(CheckPoint(f"anchored {k + 1}", theta, PointKind.ANCHORED))
    # Near the optimum, where a descent ends up: moved by 30%, 3%, 0.3% and 0.03% of each
    # parameter's scale, random signs (a formula wrong only close to the answer shows there).
    near = []
    if optimum is not None:
        for k, share in enumerate(NEAR_SHARES):
            signs = rng.choice([-1.0, 1.0], size=size)
            theta = optimum + signs * share * scale * rng.uniform(0.5, 1.5, size)
            near.append(theta)
            points.append(CheckPoint(f"near the optimum {k + 1}", theta, PointKind.NEAR))
    # Directions for the extremes: random signs, magnitudes of the parameters' own scale.
    directions = rng.choice([-1.0, 1.0], size=(4, size)) * scale * rng.uniform(0.5, 1.5, (4, size))
    extremes, what = model.extreme_points(directions)
    for k, theta in enumerate(extremes):
        points.append(CheckPoint(f"extreme {k + 1}", theta, PointKind.EXTREME))
    for point in points:
        point.theta = np.asarray(point.theta, dtype=dtype).astype(np.float64)
    coverage = Coverage(
        random=len(random),
        extreme=len(extremes),
        anchored=len(anchored),
        near=len(near),
        smallest=10.0 ** DECADES[0],
        largest=10.0 ** DECADES[1],
        sign_pairs=size == 1 or (pairs >= 2 and size <= 2 ** (pairs - 1)),
        every_orthant=every_orthant,
        extreme_what=what,
    )
    return points, coverage


def _sign_patterns(rows: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """`rows` sign vectors over `size` parameters, the first of each pair of opposite points.

    With few parameters (2^(size-1) <= rows) every sign pattern up to a global flip is used, so
    with the flipped partners every orthant is checked. Otherwise each parameter's column of
    signs is a distinct codeword that starts with +1, then the whole column is flipped at random:
    any two columns then agree in some row and differ in another, so every pair of parameters
    is seen with all four sign combinations (for up to 2^(rows-1) parameters; beyond, random).
    Returns the patterns and whether every orthant is covered.
    """
    if rows == 0:
        return np.ones((0, size)), False
    every_orthant = size <= 30 and 2 ** (size - 1) <= rows
    if every_orthant:
        codes = np.arange(2 ** (size - 1))
        extra = rng.integers(0, 2 ** (size - 1), size=rows - codes.size)
        codes = np.concatenate([rng.permutation(codes), extra])
        bits = (codes[:, None] >> np.arange(size)[None, :]) & 1
        return np.where(bits == 1, -1.0, 1.0), True
    if rows >= 2 and size <= 2 ** (rows - 1):
        codes = rng.choice(2 ** (rows - 1), size=size, replace=False)
        bits = (codes[None, :] >> np.arange(rows - 1)[:, None]) & 1  # (rows - 1) × size
        columns = np.vstack([np.zeros((1, size), dtype=int), bits])
        signs = np.where(columns == 1, -1.0, 1.0)
        return signs * rng.choice([-1.0, 1.0], size=size), False
    return rng.choice([-1.0, 1.0], size=(rows, size)), False


def _spread(rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Log10 magnitudes, `rows` per parameter, stratified over DECADES: each parameter gets one
    in each of `rows` equal bands, in its own random order (a Latin hypercube)."""
    low, high = DECADES
    strata = np.argsort(rng.uniform(size=(rows, size)), axis=0)
    return low + (strata + rng.uniform(size=(rows, size))) * (high - low) / max(rows, 1)


def moved_off_kink(plan: Plan, point: CheckPoint, count: int) -> CheckPoint:
    """A point near `point`, moved off the kink it sits on: each parameter moves by about a
    thousandth of its scale, with random signs (seeded), so that no row stays exactly on the
    kink, while the check stays in the same region."""
    rng = np.random.default_rng([plan.settings.seed, 7919, count])
    scale = plan.model.parameter_scale(plan.start, plan.optimum.theta)
    step = 1e-3 * scale * rng.uniform(0.5, 1.5, point.theta.size)
    theta = point.theta + rng.choice([-1.0, 1.0], point.theta.size) * step
    theta = np.asarray(theta, dtype=plan.data.dtype).astype(np.float64)
    label = f"{point.label} (moved off the kink)"
    return CheckPoint(label, theta, PointKind.MOVED, moved_from=point.label)


# ---- which engines, and how much each does -----------------------------------------------------
def _choose_engines(plan: Plan) -> None:
    """The engines asked for that can run here (skipped ones with their reason), and each
    engine's budget."""
    settings, model = plan.settings, plan.model
    explicit = settings.engines is not None
    formula = plan.formula
    for name in settings.engines or ENGINE_NAMES:
        try:
            cls = planning_facts(name)
            given = formula is not None and cls.accepts_formula
            # The user's formula makes its engine run whatever the model.
            reason = None if given else cls.unsupported(model)
            if reason is not None:
                raise EngineUnavailable(name, reason)
        except EngineUnavailable as error:
            if explicit:
                raise UsageError(str(error)) from None
            if settings.device == "cuda" and row(name).follows_device:
                raise UsageError(f"--device cuda is for {name}, but {error}") from None
            plan.skipped[name] = error.reason + (
                f" (install with: {error.install})" if error.install else ""
            )
            continue
        budget = _budget(plan, cls)
        if budget is None:
            continue
        plan.engines.append(name)
        plan.budgets[name] = budget
    if not settings.full_descents:
        _share_descents(plan)
    if formula is not None and not any(planning_facts(n).accepts_formula for n in plan.engines):
        takes = next(
            n for n in ENGINE_NAMES if row(n).package is None and planning_facts(n).accepts_formula
        )
        raise UsageError(
            f"the formula under test is run by the {takes} engine: add it to --engines"
        )
    if len(plan.engines) < 2:
        only = ", ".join(plan.engines) or "no engine"
        hint = _suggestion(model, plan.engines)
        raise UsageError(
            f"only {only} can compute the gradient here, so there is nothing to compare it "
            f"with: add another engine (for example --engines {','.join([*plan.engines, hint])})"
        )


def _suggestion(model: Model, engines: list[str]) -> str:
    """The engine most preferred as the gradient's reference not yet in `engines` that runs."""
    usable = []
    for name in ENGINE_NAMES:
        try:
            cls = planning_facts(name)
        except EngineUnavailable:
            continue
        if name not in engines and cls.unsupported(model) is None:
            usable.append((row(name).prefer[0], name))
    return min(usable)[1] if usable else ENGINE_NAMES[-1]


def _budget(plan: Plan, cls: Any) -> Budget | None:
    """What the engine can do within the time limit (None: it is skipped, with a note)."""
    limit = LIMITS.seconds
    iterations = plan.settings.iterations
    model = plan.model
    seconds = cls.estimate_seconds(model)
    name = cls.name
    if seconds > limit:
        reason = (
            f"one gradient over {plan.data.rows:,} rows and {model.size:,} parameters would "
            f"take about {seconds:.2g} s, more than the {limit:.0f} s it is given"
        )
        plan.skipped[name] = reason
        plan.notes.append(f"{name} skipped: {reason}")
        return None
    points, notes = len(plan.points), []
    affordable = int(limit / seconds)
    # An engine may give its descent less than the rest of its time (the per-point loop: past
    # the reference's size it adds nothing the vectorised engines' descents do not).
    descent_limit = cls.descent_seconds if cls.descent_seconds is not None else limit
    if affordable < points:
        points = max(1, affordable // 2)
    steps = max(min(affordable - points, int(descent_limit / seconds)), 0)
    if steps < iterations or points < len(plan.points):
        # The check points first: they are what the gradient check stands on; the descent
        # gets what is left.
        where = (
            "at every check point"
            if points == len(plan.points)
            else "at the start point only"
            if points == 1
            else f"at {points} of the {len(plan.points)} check points"
        )
        if steps < iterations:
            given = min(limit, descent_limit)
            notes.append(
                f"checked {where}, and its descent capped at {steps:,} of {iterations:,} "
                f"iterations (about {given:.2g} s at {seconds:.2g} s per step); compared over "
                "those only"
            )
            iterations = steps
        else:
            notes.append(f"checked {where} (about {limit:.2g} s)")
    hessian = cls.computes_hessian and plan.hessians
    if hessian and cls.hessian_evaluations(model) * seconds > limit:
        hessian = False
        notes.append(
            f"Hessian skipped: about {cls.hessian_evaluations(model):.3g} evaluations "
            f"({cls.hessian_evaluations(model) * seconds:.2g} s)"
        )
    return Budget(points, iterations, hessian, tuple(notes))


def _share_descents(plan: Plan) -> None:
    """Two whole descents, and the first iterations of the others, where descents are long.

    What a descent adds to the check points is the gradient along the path the hand formulas
    take; the descent of the hand formulas (the formula under test) and that of one exact engine
    cover it end to end, and every engine is compared with both over the iterations it runs. So
    where a descent is more work than ``LIMITS.companion_work`` (rows × operations per row ×
    iterations: at a million rows each of the slower engines would add 10 to 20 s), the other
    engines descend the first iterations within that work, all the same number, and are compared
    over those. The exact engine that descends all the way is the one with the cheapest step,
    from the same fixed rates as every budget, among those whose method is fixed (not numeric,
    which may fall back to central differences). ``--full-descents`` turns this off.
    """
    iterations = plan.settings.iterations
    steps = _round_down(max(int(LIMITS.companion_work / plan.model.work()), 1))
    if steps >= iterations:
        return
    full = [n for n in plan.engines if plan.budgets[n].iterations >= iterations]
    hand = [n for n in full if planning_facts(n).accepts_formula]
    exact = [
        n for n in full
        if n not in hand and row(n).trust is Trust.EXACT
        and not planning_facts(n).method_decided_at_run_time
    ]  # fmt: skip
    if not hand or not exact:
        return
    cost = {n: planning_facts(n).estimate_seconds(plan.model) for n in full}
    referee = min(exact, key=lambda n: (cost[n], row(n).preference(Check.DESCENT)))
    shortened = [n for n in full if n not in hand and n != referee]
    if not shortened:
        return
    for name in shortened:
        plan.budgets[name] = dataclasses.replace(plan.budgets[name], iterations=steps)
    plan.notes.append(
        f"{listing(shortened)} descend the first {steps:,} of {iterations:,} iterations and "
        f"{'is' if len(shortened) == 1 else 'are'} compared over those; "
        f"{listing([*hand, referee])} descend all {iterations:,} (the others' whole descents "
        f"would take up to about {max(cost[n] for n in shortened) * iterations:.2g} s each; "
        "--full-descents runs them)"
    )


def _round_down(steps: int) -> int:
    """`steps` down to 1, 2 or 5 times a power of ten (a prefix length that reads well)."""
    power: int = 10 ** (len(str(steps)) - 1)
    return max(m * power for m in (1, 2, 5) if m * power <= steps)


def planned_seconds(plan: Plan) -> float:
    """The plan's estimated engine time in all (for tests and the benchmark)."""
    total = 0.0
    for name, budget in plan.budgets.items():
        cls = planning_facts(name)
        per = cls.estimate_seconds(plan.model)
        total += per * (budget.points + budget.iterations)
        if budget.hessian:
            total += per * cls.hessian_evaluations(plan.model)
    return total
