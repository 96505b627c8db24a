"""Hidden customer personas and the per-customer parameters drawn from them.

Each persona is a set of *distributions*, not fixed values: every customer draws its own purchase
rate, drop-out probability, spend level, preferences and response rates from its persona's
distributions, so the personas overlap the way real customer groups do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from seg_pipeline.generator.catalogue import CATEGORIES, CHANNELS, TOPICS


@dataclass(frozen=True)
class PersonaSpec:
    """Distributions that define one hidden persona.

    Rates are per day; ``*_mean`` / ``*_k`` pairs parameterise Gamma or Beta draws by their mean
    and a concentration (higher = tighter around the mean).
    """

    name: str
    share: float  # share of the population existing at start_date
    signup_share: float  # share of the customers who sign up during the simulation
    tenure_days: tuple[int, int]  # signup between these many days before start_date
    lam_mean: float  # BG/NBD purchase rate (orders/day), Gamma across customers
    lam_shape: float
    p_a: float  # drop-out probability after each purchase ~ Beta(p_a, p_b)
    p_b: float
    spend_mean: float  # mean order value, Gamma across customers (Gamma-Gamma-like)
    spend_shape: float
    basket_lines: float  # mean number of order lines
    category_tilt: tuple[float, ...]  # Dirichlet mean over CATEGORIES (normalised)
    category_k: float
    channel_mix: tuple[float, ...]  # Dirichlet mean over CHANNELS
    channel_k: float
    discount_mean: float  # probability an order uses a discount, Beta across customers
    cancel_mean: float
    return_mean: float
    session_rate: float  # browsing sessions/day while alive, Gamma across customers
    events_per_session: float
    add_to_cart: float  # probability that a browsing event is an add-to-cart
    open_mean: float  # campaign open / click-given-open probabilities
    click_mean: float
    # probability that a clicked send persuades the customer to an order they would not have
    # placed otherwise, before the behaviour modifiers of UPLIFT (see draw_customer_params)
    persuade_mean: float
    review_mean: float  # probability of reviewing a completed order
    satisfaction: float  # mean star rating of the customer's experience
    consent: float  # probability of marketing consent
    topic_weights: tuple[float, ...]  # preferred review topics over TOPICS
    age_mean: float


def _p(*xs: float) -> tuple[float, ...]:
    s = sum(xs)
    return tuple(x / s for x in xs)


# categories: electronics, fashion, home, beauty, sports, toys, grocery, books
# channels: web, app, store, marketplace
# topics: delivery, quality, price, service, size_fit, packaging
DEFAULT_PERSONAS: tuple[PersonaSpec, ...] = (
    PersonaSpec(
        "loyal_high_value", 0.15, 0.03, (365, 2500), 0.23, 14.0, 1.0, 60.0, 150.0, 16.0, 2.6,
        _p(1.2, 1.3, 1.6, 1.4, 1.0, 0.7, 1.8, 1.0), 8.0, _p(0.3, 0.5, 0.15, 0.05), 10.0,
        0.05, 0.02, 0.05, 0.5, 6.0, 0.14, 0.6, 0.45, 0.04, 0.25, 4.3, 0.95,
        _p(1.0, 2.5, 0.8, 1.0, 1.0, 1.0), 44.0,
    ),
    PersonaSpec(
        "bargain_hunter", 0.20, 0.04, (90, 1200), 0.12, 14.0, 1.0, 40.0, 35.0, 16.0, 2.2,
        _p(1.0, 1.8, 1.0, 1.0, 0.9, 1.3, 1.6, 0.8), 8.0, _p(0.3, 0.15, 0.05, 0.5), 10.0,
        0.85, 0.03, 0.07, 0.5, 8.0, 0.10, 0.4, 0.35, 0.22, 0.10, 3.8, 0.92,
        _p(1.0, 1.0, 2.8, 0.7, 1.0, 0.8), 39.0,
    ),
    PersonaSpec(
        "new_customer", 0.15, 0.85, (7, 60), 0.08, 14.0, 1.2, 14.0, 75.0, 16.0, 1.6,
        _p(1.0, 1.7, 1.0, 1.4, 1.0, 0.8, 1.0, 1.0), 8.0, _p(0.6, 0.2, 0.15, 0.05), 10.0,
        0.1, 0.03, 0.08, 0.35, 5.0, 0.10, 0.45, 0.25, 0.30, 0.12, 4.0, 0.90,
        _p(2.0, 1.8, 1.0, 1.0, 1.0, 1.2), 35.0,
    ),
    PersonaSpec(
        "browser", 0.20, 0.03, (90, 900), 0.015, 14.0, 1.0, 12.0, 55.0, 16.0, 1.3,
        _p(1.8, 1.7, 1.1, 0.9, 1.1, 0.8, 0.5, 1.1), 8.0, _p(0.6, 0.2, 0.1, 0.1), 10.0,
        0.08, 0.04, 0.12, 2.2, 12.0, 0.05, 0.15, 0.3, 0.25, 0.04, 3.7, 0.88,
        _p(1.0, 2.0, 1.2, 1.0, 2.0, 1.0), 33.0,
    ),
    PersonaSpec(
        "lapsing", 0.15, 0.02, (600, 2000), 0.03, 14.0, 2.0, 6.0, 120.0, 16.0, 1.8,
        _p(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), 8.0, _p(0.3, 0.2, 0.35, 0.15), 10.0,
        0.1, 0.05, 0.12, 0.12, 5.0, 0.08, 0.35, 0.12, 0.35, 0.15, 2.6, 0.90,
        _p(2.8, 1.0, 1.0, 2.8, 1.0, 1.2), 47.0,
    ),
    PersonaSpec(
        "one_off", 0.15, 0.03, (30, 240), 0.02, 14.0, 9.0, 1.0, 60.0, 16.0, 1.5,
        _p(1.6, 1.0, 1.0, 0.9, 1.0, 1.5, 0.7, 1.2), 8.0, _p(0.35, 0.1, 0.3, 0.25), 10.0,
        0.1, 0.04, 0.10, 0.02, 3.0, 0.08, 0.02, 0.10, 0.20, 0.05, 3.1, 0.88,
        _p(2.0, 1.0, 1.2, 2.0, 1.0, 1.0), 41.0,
    ),
)  # fmt: skip

# Concentration of the per-customer draws around their persona's mean (Gamma shape or Beta
# k = a + b): higher is tighter.  Together with the persona means above they set how much the
# personas overlap; the segmentation evaluation (seg_pipeline/segmentation/evaluation.py)
# reports that overlap (no single feature gives the personas away, a supervised classifier
# stays below 98% accuracy) beside the recovery of the personas by clustering.
SPREAD: dict[str, float] = {
    "discount": 12.0,
    "return": 8.0,
    "sessions": 14.0,
    "events_per_session": 5.0,
    "add_to_cart": 30.0,
    "campaign": 30.0,
    "review": 8.0,
}

# The planted campaign uplift: a customer's probability that a clicked send makes them place an
# order they would not have placed otherwise (persuade_p) is their persona's draw (Beta around
# persuade_mean, concentration SPREAD["campaign"]) times
#   scale * (discount_offset + discount propensity) / (1 + lambda / lambda_half),
# capped at max_p: higher for discount-prone customers, lower for frequent buyers (who would
# buy anyway). The uplift of a send is P(open) * P(click | open) * persuade_p while alive.
UPLIFT: dict[str, float] = {
    "scale": 2.0,
    "discount_offset": 0.5,
    "lambda_half": 0.1,
    "max_p": 0.9,
}

PERSONA_NAMES: tuple[str, ...] = tuple(p.name for p in DEFAULT_PERSONAS)


def resolve_personas(shares: tuple[tuple[str, float], ...] | None) -> tuple[PersonaSpec, ...]:
    """Return the persona specs with optional overridden start-population shares.

    Parameters
    ----------
    shares
        ``(persona_name, share)`` pairs; personas not listed get share 0.  ``None`` keeps the
        defaults.  Shares are normalised to sum to one.

    Returns
    -------
    tuple of PersonaSpec
    """
    if shares is None:
        return DEFAULT_PERSONAS
    given = dict(shares)
    unknown = set(given) - set(PERSONA_NAMES)
    if unknown:
        raise ValueError(f"unknown personas: {sorted(unknown)}")
    total = sum(given.values())
    if total <= 0 or any(v < 0 for v in given.values()):
        raise ValueError("persona shares must be non-negative and sum to a positive number")
    out = []
    for p in DEFAULT_PERSONAS:
        d = asdict(p)
        d["share"] = given.get(p.name, 0.0) / total
        out.append(PersonaSpec(**d))
    return tuple(out)


def _gamma(rng: np.random.Generator, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    return rng.gamma(shape, mean / shape)


def _beta(rng: np.random.Generator, mean: np.ndarray, k: float) -> np.ndarray:
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    return rng.beta(mean * k, (1 - mean) * k)


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    g = rng.gamma(alpha)
    g = np.maximum(g, 1e-9)
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


def draw_customer_params(
    rng: np.random.Generator, persona: np.ndarray, specs: tuple[PersonaSpec, ...]
) -> dict[str, np.ndarray]:
    """Draw every behavioural parameter for customers of the given persona indices.

    Parameters
    ----------
    rng
        Random generator (already seeded for this batch of customers).
    persona
        Persona index per customer (into ``specs``).
    specs
        Persona definitions.

    Returns
    -------
    dict of str to numpy.ndarray
        One array per parameter, aligned with ``persona``.
    """
    n = persona.size

    def col(attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in specs], dtype=np.float64)[persona]

    def mat(attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in specs], dtype=np.float64)[persona]

    out: dict[str, np.ndarray] = {}
    out["lam"] = _gamma(rng, col("lam_mean"), col("lam_shape"))
    out["p_drop"] = rng.beta(col("p_a"), col("p_b"))
    out["spend_mean"] = _gamma(rng, col("spend_mean"), col("spend_shape"))
    out["basket_mean"] = 1.0 + _gamma(rng, col("basket_lines") - 0.9, np.full(n, 2.5))
    out["cat_prefs"] = _dirichlet_rows(rng, mat("category_tilt") * col("category_k")[:, None])
    out["chan_probs"] = _dirichlet_rows(rng, mat("channel_mix") * col("channel_k")[:, None])
    out["disc_prop"] = _beta(rng, col("discount_mean"), SPREAD["discount"])
    out["cancel_rate"] = _beta(rng, col("cancel_mean"), 20.0)
    out["return_rate"] = _beta(rng, col("return_mean"), SPREAD["return"])
    out["sess_rate"] = _gamma(rng, col("session_rate"), np.full(n, SPREAD["sessions"]))
    out["eps_mean"] = 1.5 + _gamma(
        rng, col("events_per_session") - 1.5, np.full(n, SPREAD["events_per_session"])
    )
    out["atc_prob"] = _beta(rng, col("add_to_cart"), SPREAD["add_to_cart"])
    out["open_p"] = _beta(rng, col("open_mean"), SPREAD["campaign"])
    out["click_p"] = _beta(rng, col("click_mean"), SPREAD["campaign"])
    out["persuade_p"] = np.minimum(
        _beta(rng, col("persuade_mean"), SPREAD["campaign"])
        * UPLIFT["scale"]
        * (UPLIFT["discount_offset"] + out["disc_prop"])
        / (1.0 + out["lam"] / UPLIFT["lambda_half"]),
        UPLIFT["max_p"],
    )
    out["review_p"] = _beta(rng, col("review_mean"), SPREAD["review"])
    out["satisfaction"] = np.clip(rng.normal(col("satisfaction"), 0.65), 1.0, 5.0)
    out["consent"] = rng.random(n) < col("consent")
    out["topic_prefs"] = _dirichlet_rows(rng, mat("topic_weights") * 4.0)
    out["age"] = np.clip(rng.normal(col("age_mean"), 13.0), 18.0, 90.0)
    return out


assert len(CATEGORIES) == len(DEFAULT_PERSONAS[0].category_tilt)
assert len(CHANNELS) == len(DEFAULT_PERSONAS[0].channel_mix)
assert len(TOPICS) == len(DEFAULT_PERSONAS[0].topic_weights)
