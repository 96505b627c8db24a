"""Day-by-day simulation of the customer world and writing of the landing files.

The world is simulated sequentially from ``start_date``.  Every random draw of day ``d`` comes
from ``default_rng([seed, d, stream, ...])`` and the state carried between days depends only on
earlier days, so the file of a day is identical whatever ``end_date`` is. The activation feed's
files of day ``d - 1`` (if a feed folder is given) add the sends of day ``d``, drawn from
streams of their own, so a day without a feed is the same with or without the folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from seg_pipeline.generator import mess
from seg_pipeline.generator.catalogue import (
    CATEGORIES,
    CATEGORY_MAX_QTY,
    CATEGORY_SHARE,
    CHANNELS,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    DEVICES,
    EVENT_TYPES,
    HOURLY_P,
    PRODUCT_NOUNS,
    REFERRER_P,
    REFERRERS,
    STORE_HOURLY_P,
    TOPICS,
    Catalogue,
    PeoplePools,
    build_catalogue,
    build_people_pools,
    format_offsets,
    local_times_ms,
    offset_table,
)
from seg_pipeline.generator.config import SHIFT_BEHAVIOURS, GenerationSummary, GeneratorConfig
from seg_pipeline.generator.ids import (
    customer_ids,
    day_ms,
    fmt_dates,
    fmt_local,
    fmt_utc_ms,
    fmt_utc_seconds,
    hex_ids,
    prefixed,
)
from seg_pipeline.generator.personas import (
    UPLIFT,
    PersonaSpec,
    draw_customer_params,
    resolve_personas,
)
from seg_pipeline.generator.text import review_text
from seg_pipeline.generator.writers import DayFileWriter
from seg_pipeline.sources import (
    CAMPAIGN_SENDS,
    CRM_CUSTOMERS,
    ORDERS,
    REVIEWS,
    SOURCES,
    WEB_EVENTS,
    Source,
)

# random streams
S_INIT, S_SIGNUP, S_CRM, S_CAMPAIGN, S_ORDERS, S_WEB, S_REVIEWS, S_MESS = range(1, 9)
S_HOLDOUT = 9  # control groups of the generated campaigns (key: day, campaign number)
S_FEED = 10  # sends of the activation feed (key: day, file, campaign)
S_SHIFT = 11  # the customers a persona-mix shift changes (key: the shift day)
CHUNK_ROWS = 500_000
ANON_SHARE = 0.3  # share of web sessions by anonymous visitors
SIGNUP_RATE = 0.002  # new customers per existing customer and day
CHANGE_RATE = 0.002  # existing customers changing their CRM record per day
DEAD_BROWSE = 0.08  # browsing of customers who dropped out, relative to alive
PURCHASE_SESSION_P = 0.9  # web/app orders that come with a tracked session
EPOCH = date(1970, 1, 1)

NULLABLE = {
    "crm_customers": (
        "phone",
        "first_name",
        "last_name",
        "birth_date",
        "city",
        "marketing_consent",
    ),
    "orders": ("category", "discount", "channel", "status"),
    "web_events": ("url", "device"),
    "reviews": ("review_text", "rating"),
    "campaign_sends": ("channel", "opened", "control_group"),
}
GENDERS = ("F", "M", "X", "")
PAGES = ("/", "/cart", "/checkout", "/deals", "/account")


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _sample_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0])[:, None] * cum[:, -1:]
    return np.minimum((cum < u).sum(axis=1), probs.shape[1] - 1)


class World:
    """Customer state carried from day to day."""

    def __init__(
        self,
        config: GeneratorConfig,
        specs: tuple[PersonaSpec, ...],
        catalogue: Catalogue,
        pools: PeoplePools,
    ) -> None:
        self.cfg = config
        self.seed = config.seed
        self.m = config.messiness
        self.specs = specs
        self.cat = catalogue
        self.pools = pools
        self.start_epoch = (config.start_date - EPOCH).days
        self.c: dict[str, np.ndarray] = {}
        self.next_order = 1
        self.next_review = 1
        self.reviews_due: dict[str, np.ndarray] = {}
        self.campaign_truth: list[dict[str, Any]] = []  # one row per generated campaign
        # the activation feed: its sends, and every send to its customers from their first one
        self.feed_dir = (
            None if config.activation_feed_dir is None else Path(config.activation_feed_dir)
        )
        self.feed_counts: dict[str, int] = dict.fromkeys(FEED_COUNTS, 0)
        self.feed_truth: list[pl.DataFrame] = []
        self.followed_sends: list[pl.DataFrame] = []
        self.followed = np.zeros(0, dtype=bool)
        self.pending: dict[str, dict[int, list[pl.DataFrame]]] = {s.name: {} for s in SOURCES}
        self.url_pool, self.url_product0, self.url_cat0, self.url_search0 = self._url_pool()
        self.product_pool = pl.concat([catalogue.product_ids, pl.Series([None], dtype=pl.String)])
        # the day index of the shift (None: no shift)
        self.shift_day = (
            None if config.shift_date is None else (config.shift_date - config.start_date).days
        )

    # ------------------------------------------------------------------ customers
    @property
    def n(self) -> int:
        return int(self.c["persona"].size) if self.c else 0

    def _url_pool(self) -> tuple[pl.Series, int, int, int]:
        urls = list(PAGES)
        cat0 = len(urls)
        urls += [f"/c/{c}" for c in CATEGORIES]
        prod0 = len(urls)
        urls += [f"/p/{p}" for p in self.cat.product_ids.to_list()]
        search0 = len(urls)
        for c in CATEGORIES:
            urls += [f"/search?q={w.replace(' ', '+')}" for w in PRODUCT_NOUNS[c]]
        return pl.Series(urls), prod0, cat0, search0

    def _add_customers(
        self, rng: np.random.Generator, persona: np.ndarray, signup_day: np.ndarray
    ) -> None:
        n = persona.size
        p = draw_customer_params(rng, persona, self.specs)
        country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS)
        gender = rng.choice(4, size=n, p=[0.49, 0.46, 0.02, 0.03])
        fs = self.pools.first_slices[country]
        use_male = (gender == 1) | ((gender >= 2) & (rng.random(n) < 0.5))
        start = np.where(use_male, fs[:, 2], fs[:, 0])
        size = np.where(use_male, fs[:, 3], fs[:, 1])
        first = start + (rng.random(n) * size).astype(np.int64)
        ls = self.pools.last_slices[country]
        last = ls[:, 0] + (rng.random(n) * ls[:, 1]).astype(np.int64)
        city = self.pools.sample_city(rng, country)
        birth = (
            self.start_epoch + signup_day - (p.pop("age") * 365.25).astype(np.int64)
        ) - rng.integers(0, 365, size=n)
        ds = self.pools.domain_slices[country]
        local_dom = ds[:, 0] + (rng.random(n) * ds[:, 1]).astype(np.int64)
        glob_dom = rng.integers(0, self.pools.n_global_domains, size=n)
        email_dom = np.where(rng.random(n) < 0.35, local_dom, glob_dom)
        digits = np.array([c.phone_digits for c in COUNTRIES])[country]
        phone = (10 ** (digits - 1) + (rng.random(n) * 9 * 10 ** (digits - 1))).astype(np.int64)
        new = {
            "persona": persona.astype(np.int8),
            "signup_day": signup_day.astype(np.int32),
            "country": country.astype(np.int8),
            "gender": gender.astype(np.int8),
            "first": first,
            "last": last,
            "city": city,
            "birth": birth.astype(np.int32),
            "email_var": rng.integers(0, 4, size=n).astype(np.int8),
            "email_dom": email_dom,
            "email_num": rng.integers(1, 100, size=n).astype(np.int16),
            "phone": phone,
            "device_pref": rng.choice(3, size=n, p=[0.45, 0.45, 0.1]).astype(np.int8),
            "alive": np.ones(n, dtype=bool),
            "dropout_day": np.full(n, -1, dtype=np.int32),
            "n_orders": np.zeros(n, dtype=np.int32),
            "revenue": np.zeros(n),
            "n_sessions": np.zeros(n, dtype=np.int32),
            "n_reviews": np.zeros(n, dtype=np.int32),
            **p,
        }
        behaviour = SHIFT_BEHAVIOURS.get(self.cfg.shift_kind)
        if self.shift_day is not None and behaviour is not None:
            shifted = signup_day >= self.shift_day
            new[behaviour] = np.where(
                shifted, new[behaviour] * self.cfg.shift_factor, new[behaviour]
            )
        if not self.c:
            self.c = new
        else:
            self.c = {k: np.concatenate([v, new[k]]) for k, v in self.c.items()}

    def init_population(self) -> None:
        rng = _rng(self.seed, 0, S_INIT)
        n = self.cfg.n_customers
        shares = np.array([s.share for s in self.specs])
        persona = rng.choice(len(self.specs), size=n, p=shares / shares.sum())
        lo = np.array([s.tenure_days[0] for s in self.specs])[persona]
        hi = np.array([s.tenure_days[1] for s in self.specs])[persona]
        tenure = lo + ((hi - lo) * rng.random(n) ** 0.85).astype(np.int64)
        self._add_customers(rng, persona, -np.maximum(tenure, 1))

    def crm_frame(self, idx: np.ndarray, updated_ms: np.ndarray) -> pl.DataFrame:
        c = self.c
        pools = self.pools
        fa = pools.first_ascii[c["first"][idx]]
        la = pools.last_ascii[c["last"][idx]]
        dom = pools.domains[c["email_dom"][idx]]
        num = pl.Series(c["email_num"][idx].astype(np.int64)).cast(pl.String)
        var = pl.Series(c["email_var"][idx])
        tmp = pl.DataFrame({"fa": fa, "la": la, "dom": dom, "num": num, "var": var})
        email = tmp.select(
            pl.when(pl.col("var") == 0)
            .then(pl.col("fa") + "." + pl.col("la"))
            .when(pl.col("var") == 1)
            .then(pl.col("fa") + pl.col("la") + pl.col("num"))
            .when(pl.col("var") == 2)
            .then(pl.col("fa").str.slice(0, 1) + "." + pl.col("la") + pl.col("num"))
            .otherwise(pl.col("la") + "_" + pl.col("fa") + pl.col("num"))
            + "@"
            + pl.col("dom")
        ).to_series()
        country = c["country"][idx]
        prefixes = pl.Series([x.phone_prefix for x in COUNTRIES])[country]
        phone_num = pl.Series(c["phone"][idx]).cast(pl.String)
        phone = pl.select(prefixes + phone_num).to_series()
        return pl.DataFrame(
            {
                "customer_id": customer_ids(idx),
                "email": email,
                "phone": phone,
                "first_name": pools.first_names[c["first"][idx]],
                "last_name": pools.last_names[c["last"][idx]],
                "birth_date": fmt_dates(c["birth"][idx]),
                "gender": pl.Series(GENDERS)[c["gender"][idx]],
                "country": pl.Series([x.code for x in COUNTRIES])[country],
                "city": pools.cities[c["city"][idx]],
                "signup_date": fmt_dates(self.start_epoch + c["signup_day"][idx]),
                "marketing_consent": pl.Series(c["consent"][idx], dtype=pl.Boolean),
                "updated_at": fmt_utc_seconds(updated_ms),
            }
        )

    # ------------------------------------------------------------------ one day
    def simulate_day(self, d: int, day: date) -> dict[str, Any]:
        """Advance the world by one day and return the clean rows of every source."""
        seed = self.seed
        base_ms = day_ms(day)
        offsets = offset_table(day)
        out: dict[str, Any] = {}
        if d == self.shift_day:
            self._shift(d)

        # sign-ups and CRM changes
        crm_parts: list[pl.DataFrame] = []
        if d == 0:
            n = self.n
            rng = _rng(seed, d, S_CRM)
            sd = self.c["signup_day"]
            span = np.maximum(-sd, 1).astype(np.int64) * 86_400_000
            upd = (
                base_ms + sd.astype(np.int64) * 86_400_000 + (rng.random(n) * span).astype(np.int64)
            )
            for s in range(0, n, CHUNK_ROWS):
                idx = np.arange(s, min(n, s + CHUNK_ROWS))
                crm_parts.append(self.crm_frame(idx, upd[idx]))
            new_idx = np.zeros(0, dtype=np.int64)
        else:
            rng = _rng(seed, d, S_SIGNUP)
            weekend = day.weekday() >= 5
            n_new = int(rng.poisson(SIGNUP_RATE * (1.3 if weekend else 1.0) * self.n))
            n_before = self.n
            if n_new:
                shares = np.array([s.signup_share for s in self.specs])
                persona = rng.choice(len(self.specs), size=n_new, p=shares / shares.sum())
                self._add_customers(rng, persona, np.full(n_new, d))
            new_idx = np.arange(n_before, self.n)
            crm_parts += self._crm_changes(d, base_ms, offsets, new_idx, n_before)
        out["crm_customers"] = crm_parts

        # organic orders first: a send's conversion flag also counts a click on a day the
        # customer orders anyway ("sure things"); then the sends and their extra orders
        orders_rng = _rng(seed, d, S_ORDERS)
        organic, drops = self._organic_orders(orders_rng, d, new_idx)
        self.followed = np.concatenate(
            [self.followed, np.zeros(self.n - self.followed.size, dtype=bool)]
        )
        feed_sends, feed_extra = self._feed_sends(d, day, base_ms, organic > 0)
        sends, extra = self._campaigns(d, day, base_ms, organic > 0)
        sends = pl.concat([sends, feed_sends]).sort(["sent_at", "campaign_id", "customer_id"])
        out["campaign_sends"] = [sends]
        # the organic orders, those the generated campaigns caused and those the feed's sends
        # caused, each from a stream of its own: a feed adds orders and changes no other
        batches = [
            (orders_rng, organic),
            (_rng(seed, d, S_ORDERS, 1), extra),
            (_rng(seed, d, S_ORDERS, 2), feed_extra),
        ]
        orders, purchase = self._order_batches(d, day, base_ms, offsets, batches)
        # BG/NBD drop-out after the day's organic purchases, drawn with them: the extra orders
        # a send causes leave it alone, so campaigns never change who stays alive
        c = self.c
        c["alive"][drops] = False
        c["dropout_day"][drops] = d
        out["orders"] = [orders]
        out["reviews"] = [self._reviews(d, day, base_ms, offsets, orders, purchase)]
        out["web_sessions"] = self._sessions(d, base_ms, offsets, purchase)
        return out

    def _shift(self, d: int) -> None:
        """The configured shift, applied to the existing customers on the shift day ``d``
        (sign-ups from that day on get a behaviour shift when they are drawn)."""
        cfg, c = self.cfg, self.c
        behaviour = SHIFT_BEHAVIOURS.get(cfg.shift_kind)
        if behaviour is not None:
            c[behaviour] = c[behaviour] * cfg.shift_factor
            return
        # persona_mix: a seeded share of the existing customers becomes shift_persona
        rng = _rng(self.seed, d, S_SHIFT)
        names = [s.name for s in self.specs]
        if cfg.shift_persona not in names:
            raise ValueError(f"unknown shift_persona {cfg.shift_persona!r}; one of {names}")
        target = names.index(cfg.shift_persona)
        idx = np.nonzero(rng.random(self.n) < cfg.shift_share)[0]
        params = draw_customer_params(rng, np.full(idx.size, target), self.specs)
        params.pop("age")  # a customer's age and identity stay theirs
        for key, values in params.items():
            c[key][idx] = values
        c["persona"][idx] = target

    def _crm_changes(
        self, d: int, base_ms: int, offsets: np.ndarray, new_idx: np.ndarray, n_before: int
    ) -> list[pl.DataFrame]:
        rng = _rng(self.seed, d, S_CRM)
        c = self.c
        parts = []
        if new_idx.size:
            off = offsets[c["country"][new_idx], 12]
            t = base_ms + local_times_ms(rng, off)
            parts.append((new_idx, t))
        changers = np.nonzero(rng.random(n_before) < CHANGE_RATE)[0]
        if changers.size:
            t1 = base_ms + rng.integers(0, 80_000_000, size=changers.size)
            self._apply_change(rng, changers)
            parts.append((changers, t1))
            twice = changers[rng.random(changers.size) < 0.06]
            if twice.size:
                snap = self.crm_frame(changers, t1)
                self._apply_change(rng, twice)
                t2 = t1[np.isin(changers, twice)] + rng.integers(60_000, 6_000_000, size=twice.size)
                frames = [snap, self.crm_frame(twice, np.minimum(t2, base_ms + 86_399_000))]
                if new_idx.size:
                    frames.insert(0, self.crm_frame(*parts[0]))
                return [self._sort_crm(pl.concat(frames))]
        frames = [self.crm_frame(i, t) for i, t in parts]
        if not frames:
            return []
        return [self._sort_crm(pl.concat(frames))]

    @staticmethod
    def _sort_crm(df: pl.DataFrame) -> pl.DataFrame:
        return df.sort(["updated_at", "customer_id"])

    def _apply_change(self, rng: np.random.Generator, idx: np.ndarray) -> None:
        c = self.c
        kind = rng.choice(4, size=idx.size, p=[0.35, 0.25, 0.2, 0.2])
        k = idx[kind == 0]  # moved city (within the country)
        if k.size:
            c["city"][k] = self.pools.sample_city(rng, c["country"][k])
        k = idx[kind == 1]  # new e-mail address
        if k.size:
            c["email_dom"][k] = rng.integers(0, self.pools.n_global_domains, size=k.size)
            c["email_var"][k] = rng.integers(0, 4, size=k.size)
            c["email_num"][k] = rng.integers(1, 100, size=k.size)
        k = idx[kind == 2]  # new phone
        if k.size:
            digits = np.array([x.phone_digits for x in COUNTRIES])[c["country"][k]]
            c["phone"][k] = (
                10 ** (digits - 1) + rng.random(k.size) * 9 * 10 ** (digits - 1)
            ).astype(np.int64)
        k = idx[kind == 3]  # consent toggled
        if k.size:
            c["consent"][k] = ~c["consent"][k]

    def _feed_sends(
        self, d: int, day: date, base_ms: int, orders_today: np.ndarray
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """The activation feed's sends of ``day`` (the files of the day before), and the extra
        orders they cause per customer. Each listed customer who exists is sent the campaign on
        the row's channel and responds like to any send (funnel, planted uplift)."""
        extra = np.zeros(self.n, dtype=np.int64)
        if self.feed_dir is None:
            return pl.DataFrame(schema=_SENDS_SCHEMA), extra
        rows, counts = read_feed(self.feed_dir / (day - timedelta(days=1)).isoformat())
        for key, value in counts.items():
            self.feed_counts[key] += value
        idx = _customer_index(rows["customer_id"])
        known = (idx >= 0) & (idx < self.n)
        self.feed_counts["unknown_customer"] += int((~known).sum())
        rows = rows.filter(pl.Series(known)).with_columns(_idx=pl.Series(idx[known]))
        if rows.is_empty():
            return pl.DataFrame(schema=_SENDS_SCHEMA), extra
        c = self.c
        self.followed[rows["_idx"].to_numpy()] = True
        frames = []
        groups = rows.group_by("campaign_id", "channel").agg("_idx").sort("campaign_id", "channel")
        for k, (campaign_id, channel, members) in enumerate(groups.iter_rows()):
            aud = np.sort(np.asarray(members, dtype=np.int64))
            rng = _rng(self.seed, d, S_FEED, k)
            sent_us = (
                base_ms * 1000
                + int(rng.integers(7, 18)) * 3_600_000_000
                + rng.integers(0, 2_700_000_000, size=aud.size)
            )
            alive = c["alive"][aud].copy()
            response = self._respond(rng, aud, channel, orders_today)
            np.add.at(extra, aud[response["persuaded"]], 1)
            uplift = channel_uplift(c, channel, aud)
            self.feed_truth.append(
                pl.DataFrame(
                    {
                        "send_date": pl.Series([day] * aud.size, dtype=pl.Date),
                        "campaign_id": pl.Series([campaign_id] * aud.size, dtype=pl.String),
                        "customer_id": customer_ids(aud),
                        "channel": pl.Series([channel] * aud.size, dtype=pl.String),
                        "alive_at_send": alive,
                        "uplift": uplift,
                        "extra_order_p": uplift * alive,
                        "lambda": c["lam"][aud],
                        "p_dropout": c["p_drop"][aud],
                        "cancel_rate": c["cancel_rate"][aud],
                        "extra_order": response["persuaded"],
                    }
                )
            )
            self._follow(day, campaign_id, channel, aud)
            none = np.zeros(aud.size, dtype=bool)
            frames.append(_sends_frame(campaign_id, aud, sent_us, channel, response, none))
        self.feed_counts["sends"] += sum(f.height for f in frames)
        return pl.concat(frames), extra

    def _follow(self, day: date, campaign_id: str, channel: str, sent: np.ndarray) -> None:
        """Record the sends to customers of the activation feed (for the planted lift)."""
        idx = sent[self.followed[sent]]
        if idx.size:
            self.followed_sends.append(
                pl.DataFrame(
                    {
                        "send_date": pl.Series([day] * idx.size, dtype=pl.Date),
                        "campaign_id": pl.Series([campaign_id] * idx.size, dtype=pl.String),
                        "customer_id": customer_ids(idx),
                        "uplift": channel_uplift(self.c, channel, idx),
                    }
                )
            )

    def _order_batches(
        self,
        d: int,
        day: date,
        base_ms: int,
        offsets: np.ndarray,
        batches: list[tuple[np.random.Generator, np.ndarray]],
    ) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
        """The orders of each (stream, orders per customer) batch, one after the other."""
        frames, parts = [], []
        for rng, k in batches:
            if k.any():
                df, purchase = self._orders(rng, d, day, base_ms, offsets, k)
                frames.append(df)
                parts.append(purchase)
        if not frames:
            return self._orders(batches[0][0], d, day, base_ms, offsets, batches[0][1])
        lines = 0
        for purchase in parts:
            purchase["review_line"] = np.where(
                purchase["review_line"] >= 0, purchase["review_line"] + lines, -1
            )
            lines += purchase["line_product"].size
        merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        return pl.concat(frames), merged

    def _campaigns(
        self, d: int, day: date, base_ms: int, orders_today: np.ndarray
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """The day's campaign sends, and the extra orders they cause per customer."""
        rng = _rng(self.seed, d, S_CAMPAIGN)
        c = self.c
        n_camp = 1 + int(day.weekday() in (1, 3)) + int(rng.poisson(0.1))
        frames = []
        extra = np.zeros(self.n, dtype=np.int64)
        eligible = np.nonzero(c["consent"] & (c["signup_day"] < d))[0]
        for k in range(n_camp):
            aud = eligible[rng.random(eligible.size) < rng.uniform(0.3, 0.8)]
            channel = CAMPAIGN_CHANNELS[int(rng.choice(3, p=[0.65, 0.15, 0.2]))]
            sent_us = (
                base_ms * 1000
                + int(rng.integers(7, 18)) * 3_600_000_000
                + rng.integers(0, 2_700_000_000, size=aud.size)
            )
            response = self._respond(rng, aud, channel, orders_today)
            # the random holdout: selected, recorded, not sent (its own stream, so the share
            # changes neither the audiences nor the draws of the sent messages)
            control = _rng(self.seed, d, S_HOLDOUT, k).random(aud.size) < self.cfg.holdout_share
            response = {key: flags & ~control for key, flags in response.items()}
            np.add.at(extra, aud[response["persuaded"]], 1)
            self.campaign_truth.append(
                _campaign_truth(f"CMP{day:%Y%m%d}{k + 1:02d}", day, channel, c, aud, control)
            )
            self._follow(day, f"CMP{day:%Y%m%d}{k + 1:02d}", channel, aud[~control])
            frames.append(
                _sends_frame(
                    f"CMP{day:%Y%m%d}{k + 1:02d}", aud, sent_us, channel, response, control
                )
            )
        df = pl.concat(frames) if frames else pl.DataFrame(schema=_SENDS_SCHEMA)
        return df.sort(["sent_at", "campaign_id", "customer_id"]), extra

    def _respond(
        self, rng: np.random.Generator, aud: np.ndarray, channel: str, orders_today: np.ndarray
    ) -> dict[str, np.ndarray]:
        """What the customers ``aud`` do with a send on ``channel``: open, click, and, while
        alive, an extra order with probability persuade_p after a click (the planted uplift);
        the platform records a conversion for a click followed by any order of the day, extra
        or organic (``orders_today``)."""
        c = self.c
        factor = CHANNEL_OPEN_FACTOR[channel]
        opened = rng.random(aud.size) < np.minimum(c["open_p"][aud] * factor, MAX_OPEN_P)
        clicked = opened & (rng.random(aud.size) < c["click_p"][aud])
        alive_click = clicked & c["alive"][aud]
        persuaded = alive_click & (rng.random(aud.size) < c["persuade_p"][aud])
        converted = alive_click & (persuaded | orders_today[aud])
        return {
            "opened": opened,
            "clicked": clicked,
            "persuaded": persuaded,
            "converted": converted,
        }

    def _organic_orders(
        self, rng: np.random.Generator, d: int, new_idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Orders per customer of day ``d`` without any campaign (Poisson(lambda) while alive,
        at most 3, and a first order for some of the day's sign-ups), and the customers who
        drop out after them (probability 1 - (1 - p)^k)."""
        c = self.c
        active = c["alive"] & (c["signup_day"] <= d)
        k = np.zeros(self.n, dtype=np.int64)
        act = np.nonzero(active)[0]
        k[act] = rng.poisson(c["lam"][act])
        if new_idx.size:
            k[new_idx] += rng.random(new_idx.size) < 0.3
        k = np.minimum(k, 3)
        buyers = np.nonzero(k)[0]
        die = rng.random(buyers.size) < 1 - (1 - c["p_drop"][buyers]) ** k[buyers]
        return k, buyers[die]

    def _orders(
        self,
        rng: np.random.Generator,
        d: int,
        day: date,
        base_ms: int,
        offsets: np.ndarray,
        k: np.ndarray,
    ) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
        """The day's ``k`` orders per customer (organic and caused by campaigns; ``rng``: the
        day's order stream, after the organic counts were drawn)."""
        c = self.c
        cat = self.cat
        buyers = np.nonzero(k)[0]
        cust = np.repeat(buyers, k[buyers])
        n_o = cust.size
        # order header
        chan = _sample_rows(rng, c["chan_probs"][cust])
        country = c["country"][cust]
        off12 = offsets[country, 12]
        t_any = local_times_ms(rng, off12, HOURLY_P)
        t_store = local_times_ms(rng, off12, STORE_HOURLY_P)
        t_ms = np.where(chan == 2, t_store, t_any) // 1000 * 1000
        cancelled = rng.random(n_o) < c["cancel_rate"][cust]
        uses_disc = rng.random(n_o) < c["disc_prop"][cust]
        order = np.lexsort((cust, t_ms))
        cust, chan, country, t_ms = cust[order], chan[order], country[order], t_ms[order]
        cancelled, uses_disc = cancelled[order], uses_disc[order]
        order_no = self.next_order + np.arange(n_o)
        self.next_order += n_o
        # lines
        n_lines = 1 + np.minimum(rng.poisson(np.maximum(c["basket_mean"][cust] - 1, 0)), 11)
        lo = np.repeat(np.arange(n_o), n_lines)
        n_l = lo.size
        first_line = np.concatenate([[0], np.cumsum(n_lines)[:-1]]).astype(np.int64)
        line_no = np.arange(n_l) - np.repeat(first_line, n_lines) + 1
        lc = cust[lo]
        category = _sample_rows(rng, c["cat_prefs"][lc])
        target = c["spend_mean"][lc] / c["basket_mean"][lc] * rng.lognormal(0, 0.45, size=n_l)
        product = cat.nearest_price(category, target * rng.uniform(0.55, 1.0, size=n_l))
        price = cat.price[product]
        qty = np.clip(np.rint(target / price), 1, CATEGORY_MAX_QTY[category]).astype(np.int64)
        qty = np.where(rng.random(n_l) < 0.6, qty, 1 + (rng.random(n_l) < 0.15))
        disc_frac = rng.uniform(0.05, 0.35, size=n_l) * uses_disc[lo]
        discount = np.round(price * qty * disc_frac, 2)
        returned = ~cancelled[lo] & (rng.random(n_l) < c["return_rate"][lc])
        status = np.where(cancelled[lo], 1, np.where(returned, 2, 0))
        # state: orders and spend (drop-out: simulate_day)
        np.add.at(c["n_orders"], cust, 1)
        net = np.where(status == 0, price * qty - discount, 0.0)
        np.add.at(c["revenue"], lc, net)
        hour = (t_ms // 3_600_000).astype(np.int64)
        off = offsets[country, hour]
        ms_abs = base_ms + t_ms
        lines_ms = ms_abs[lo]
        df = pl.DataFrame(
            {
                "order_id": prefixed("O", order_no[lo], 9),
                "line_number": line_no,
                "customer_id": customer_ids(lc),
                "ordered_at": fmt_local(lines_ms, off[lo], format_offsets(off[lo])),
                "product_id": cat.product_ids[product],
                "category": pl.Series(CATEGORIES)[category],
                "quantity": qty,
                "unit_price": price,
                "discount": discount,
                "channel": pl.Series(CHANNELS)[chan[lo]],
                "status": pl.Series(("completed", "cancelled", "returned"))[status],
            }
        )
        # purchases that drive a checkout session (web/app, usually tracked)
        tracked = (chan <= 1) & (rng.random(n_o) < PURCHASE_SESSION_P)
        # per-order facts for reviews: first completed line
        completed_line = status == 0
        any_returned = np.zeros(n_o, dtype=bool)
        np.logical_or.at(any_returned, lo, returned)
        cl = np.nonzero(completed_line)[0]
        first_cl = np.full(n_o, -1)
        first_cl[lo[cl][::-1]] = cl[::-1]
        purchase = {
            "cust": cust,
            "t_ms": t_ms,
            "tracked": tracked,
            "cart_product": product[first_line],
            "review_line": first_cl,
            "line_product": product,
            "line_category": category,
            "any_returned": any_returned,
        }
        return df, purchase

    def _reviews(
        self,
        d: int,
        day: date,
        base_ms: int,
        offsets: np.ndarray,
        orders: pl.DataFrame,
        purchase: dict[str, np.ndarray],
    ) -> pl.DataFrame:
        rng = _rng(self.seed, d, S_REVIEWS)
        c = self.c
        # schedule reviews of today's completed orders
        cust = purchase["cust"]
        ok = purchase["review_line"] >= 0
        will = ok & (rng.random(cust.size) < c["review_p"][cust])
        oi = np.nonzero(will)[0]
        if oi.size:
            line = purchase["review_line"][oi]
            rc = cust[oi]
            cat_ = purchase["line_category"][line]
            rating = np.clip(
                np.rint(
                    c["satisfaction"][rc]
                    + rng.normal(0, 0.8, size=oi.size)
                    - 1.3 * purchase["any_returned"][oi]
                ),
                1,
                5,
            ).astype(np.int64)
            w = c["topic_prefs"][rc].astype(np.float64)
            fit = np.isin(cat_, [CATEGORIES.index("fashion"), CATEGORIES.index("sports")])
            si = TOPICS.index("size_fit")
            w[:, si] *= np.where(fit, 3.0, 0.1)
            topic = _sample_rows(rng, w)
            topic2 = _sample_rows(rng, w)
            new = {
                "due": d + 3 + np.minimum(rng.geometric(0.25, size=oi.size) - 1, 25),
                "cust": rc,
                "product": purchase["line_product"][line],
                "category": cat_,
                "rating": rating,
                "topic": topic,
                "topic2": topic2,
            }
            if self.reviews_due:
                self.reviews_due = {
                    k: np.concatenate([v, new[k]]) for k, v in self.reviews_due.items()
                }
            else:
                self.reviews_due = new
        if not self.reviews_due:
            return pl.DataFrame(schema=_REVIEWS_SCHEMA)
        q = self.reviews_due
        now = q["due"] == d
        idx = np.nonzero(now)[0]
        rest = q["due"] > d
        todays = {k: v[idx] for k, v in q.items()}
        self.reviews_due = {k: v[rest] for k, v in q.items()}
        n = idx.size
        if n == 0:
            return pl.DataFrame(schema=_REVIEWS_SCHEMA)
        trng = _rng(self.seed, d, S_REVIEWS, 1)
        texts = [
            review_text(trng, r, t, t2, ca)
            for r, t, t2, ca in zip(
                todays["rating"].tolist(),
                todays["topic"].tolist(),
                todays["topic2"].tolist(),
                todays["category"].tolist(),
                strict=True,
            )
        ]
        rc = todays["cust"]
        country = c["country"][rc]
        t_ms = local_times_ms(trng, offsets[country, 12]) // 1000 * 1000
        order = np.argsort(t_ms, kind="stable")
        t_ms = t_ms[order]
        off = offsets[country[order], t_ms // 3_600_000]
        np.add.at(c["n_reviews"], rc, 1)
        ids = self.next_review + np.arange(n)
        self.next_review += n
        return pl.DataFrame(
            {
                "review_id": prefixed("R", ids, 9),
                "customer_id": customer_ids(rc[order]),
                "product_id": self.cat.product_ids[todays["product"][order]],
                "reviewed_at": fmt_local(base_ms + t_ms, off, format_offsets(off)),
                "rating": todays["rating"][order],
                "review_text": pl.Series(texts)[order],
            },
            schema=_REVIEWS_SCHEMA,
        )

    # ------------------------------------------------------------------ web
    def _sessions(
        self, d: int, base_ms: int, offsets: np.ndarray, purchase: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Per-session arrays of the day, sorted by start time."""
        rng = _rng(self.seed, d, S_WEB)
        c = self.c
        elig = np.nonzero(c["signup_day"] <= d)[0]
        rate = c["sess_rate"][elig] * np.where(c["alive"][elig], 1.0, DEAD_BROWSE)
        eps = c["eps_mean"]
        pc = purchase["cust"][purchase["tracked"]]
        p_ms = purchase["t_ms"][purchase["tracked"]]
        cart = purchase["cart_product"][purchase["tracked"]]
        n_p = pc.size
        anon_ratio = ANON_SHARE / (1 - ANON_SHARE)
        anon_eps = 4.0
        scale = 1.0
        target = self.cfg.web_events_per_day
        if target is not None:
            fixed_events = (3.0 + np.maximum(eps[pc] - 3, 0.5)).sum() + anon_ratio * n_p * anon_eps
            per_scale = (rate * eps[elig]).sum() + anon_ratio * rate.sum() * anon_eps
            scale = max(target - fixed_events, 0.0) / per_scale if per_scale > 0 else 0.0
        ns = rng.poisson(rate * scale)
        bc = np.repeat(elig, ns)
        n_anon = int(rng.poisson(anon_ratio * (bc.size + n_p)))
        cust = np.concatenate([bc, pc, np.full(n_anon, -1)])
        is_p = np.concatenate([np.zeros(bc.size, bool), np.ones(n_p, bool), np.zeros(n_anon, bool)])
        n_s = cust.size
        known = cust >= 0
        ce = eps[np.maximum(cust, 0)]
        n_ev = np.where(known, 1 + rng.poisson(np.maximum(ce - 1, 0.1)), 1 + rng.poisson(3.0, n_s))
        n_ev = np.where(is_p, 3 + rng.poisson(np.maximum(ce - 3, 0.5)), n_ev).astype(np.int64)
        dur = np.where(n_ev > 1, rng.gamma(np.maximum(n_ev - 1, 1), 45_000.0), 0.0).astype(np.int64)
        country = np.where(known, c["country"][np.maximum(cust, 0)], 0)
        anon_country = rng.choice(len(COUNTRIES), size=n_s, p=COUNTRY_WEIGHTS)
        country = np.where(known, country, anon_country)
        start = local_times_ms(rng, offsets[country, 12])
        start = np.minimum(start, 86_399_999 - dur)
        end_p = np.concatenate(
            [
                np.zeros(bc.size, np.int64),
                p_ms - rng.integers(1000, 20_000, n_p),
                np.zeros(n_anon, np.int64),
            ]
        )
        dur = np.where(is_p, np.minimum(dur, np.maximum(end_p, 0)), dur)
        start = np.where(is_p, np.maximum(end_p - dur, 0), start)
        start = np.maximum(start, 0)
        cart_all = np.concatenate([np.full(bc.size, -1), cart, np.full(n_anon, -1)])
        dev_rand = rng.choice(3, size=n_s, p=[0.45, 0.45, 0.1])
        pref = c["device_pref"][np.maximum(cust, 0)]
        device = np.where(known & (rng.random(n_s) < 0.75), pref, dev_rand)
        referrer = rng.choice(len(REFERRERS), size=n_s, p=REFERRER_P)
        cookie = np.where(known, rng.random(n_s) < 0.6, True)
        visitor = rng.integers(0, 3 * max(self.cfg.n_customers, 1000), size=n_s)
        order = np.lexsort((np.arange(n_s), start))
        c_sessions = np.bincount(cust[known], minlength=self.n)
        c["n_sessions"] += c_sessions.astype(np.int32)
        return {
            "cust": cust[order],
            "is_p": is_p[order],
            "n_ev": n_ev[order],
            "dur": dur[order],
            "start": start[order],
            "cart": cart_all[order],
            "device": device[order],
            "referrer": referrer[order],
            "cookie": cookie[order],
            "visitor": visitor[order],
        }

    def web_chunks(self, d: int, day: date, base_ms: int, sess: dict[str, np.ndarray]):
        """Yield the day's web events in chunks of about ``CHUNK_ROWS`` rows."""
        n_ev = sess["n_ev"]
        if n_ev.size == 0:
            yield pl.DataFrame(schema=_WEB_SCHEMA)
            return
        cum = np.cumsum(n_ev)
        chunk_of = (cum - n_ev) // CHUNK_ROWS
        bounds = np.searchsorted(chunk_of, np.arange(chunk_of[-1] + 2))
        ev_counter = 0
        for ci in range(bounds.size - 1):
            a, b = int(bounds[ci]), int(bounds[ci + 1])
            if a == b:
                continue
            rng = _rng(self.seed, d, S_WEB, 1, ci)
            df = self._events(rng, d, base_ms, {k: v[a:b] for k, v in sess.items()}, a, ev_counter)
            ev_counter += df.height
            yield df

    def _events(
        self,
        rng: np.random.Generator,
        d: int,
        base_ms: int,
        s: dict[str, np.ndarray],
        sess_offset: int,
        ev_offset: int,
    ) -> pl.DataFrame:
        c = self.c
        cat = self.cat
        n = s["n_ev"]
        total = int(n.sum())
        si = np.repeat(np.arange(n.size), n)
        first = np.concatenate([[0], np.cumsum(n)[:-1]])
        pos = np.arange(total) - np.repeat(first, n)
        last = pos == n[si] - 1
        frac = rng.random(total)
        frac = frac[np.lexsort((frac, si))]
        frac[pos == 0] = 0.0
        is_p = s["is_p"][si]
        frac[is_p & last] = 1.0
        t = s["start"][si] + (frac * s["dur"][si]).astype(np.int64)
        cust = s["cust"][si]
        known = cust >= 0
        cs = np.maximum(cust, 0)
        # event types
        p_atc = np.where(known, c["atc_prob"][cs], 0.04)
        u = rng.random(total)
        etype = np.where(
            u < p_atc, 3, np.where(u < p_atc + 0.15, 2, np.where(u < p_atc + 0.4, 0, 1))
        )
        u0 = rng.random(total)
        etype = np.where(pos == 0, np.where(u0 < 0.55, 0, np.where(u0 < 0.85, 1, 2)), etype)
        etype = np.where(is_p & last, 4, etype)
        pre_checkout = is_p & (pos == n[si] - 2)
        etype = np.where(pre_checkout, 3, etype)
        # products and categories
        ecat = np.empty(total, dtype=np.int64)
        ecat[known] = _sample_rows(rng, c["cat_prefs"][cust[known]])
        ecat[~known] = rng.choice(len(CATEGORIES), size=int((~known).sum()), p=CATEGORY_SHARE)
        prod = cat.sample_popular(rng, ecat)
        prev_prod = np.concatenate([[-1], prod[:-1]])
        prev_view = np.concatenate([[False], etype[:-1] == 1]) & (pos > 0)
        prod = np.where((etype == 3) & prev_view, prev_prod, prod)
        prod = np.where(pre_checkout, s["cart"][si], prod)
        has_prod = (etype == 1) | (etype == 3)
        prod_idx = np.where(has_prod, prod, cat.n)
        # urls
        page = rng.choice(5, size=total, p=[0.35, 0.15, 0.0, 0.2, 0.3])
        page = np.where(page == 4, self.url_cat0 + ecat, np.array([0, 1, 2, 3, 4])[page])
        page = np.where(pos == 0, 0, page)
        search = self.url_search0 + ecat * 6 + rng.integers(0, 6, total)
        url = np.select(
            [etype == 0, has_prod, etype == 2], [page, self.url_product0 + prod, search], default=2
        )
        order = np.lexsort((pos, si, t))
        si, t, cust, known, etype, prod_idx, url = (
            a[order] for a in (si, t, cust, known, etype, prod_idx, url)
        )
        ev_no = ev_offset + np.arange(total, dtype=np.int64)
        sess_no = sess_offset + si.astype(np.int64)
        cid = customer_ids(cs[order]).scatter(np.nonzero(~known)[0], None)
        anon_key = np.where(known, cust, s["visitor"][si] + (1 << 40))
        anon = hex_ids(anon_key.astype(np.uint64), 77).scatter(
            np.nonzero(~s["cookie"][si])[0], None
        )
        return pl.DataFrame(
            {
                "event_id": hex_ids((np.int64(d) << 36) + ev_no, 11),
                "session_id": hex_ids((np.int64(d) << 30) + sess_no, 23),
                "customer_id": cid,
                "anonymous_id": anon,
                "occurred_at": fmt_utc_ms(base_ms + t),
                "event_type": pl.Series(EVENT_TYPES)[etype],
                "url": self.url_pool[url],
                "product_id": self.product_pool[prod_idx],
                "device": pl.Series(DEVICES)[s["device"][si]],
                "referrer": pl.Series(REFERRERS, dtype=pl.String)[s["referrer"][si]],
            },
            schema=_WEB_SCHEMA,
        )

    # ------------------------------------------------------------------ truth
    def truth_frame(self) -> pl.DataFrame:
        c = self.c
        idx = np.arange(self.n)
        dropout = np.where(c["dropout_day"] >= 0, self.start_epoch + c["dropout_day"], 0)
        return pl.DataFrame(
            {
                "customer_id": customer_ids(idx),
                "persona": pl.Series([s.name for s in self.specs])[c["persona"]],
                "signup_date": pl.Series(self.start_epoch + c["signup_day"]).cast(pl.Date),
                "country": pl.Series([x.code for x in COUNTRIES])[c["country"]],
                "lambda": c["lam"],
                "p_dropout": c["p_drop"],
                "spend_mean": c["spend_mean"],
                "basket_mean": c["basket_mean"],
                "discount_propensity": c["disc_prop"],
                "return_rate": c["return_rate"],
                "session_rate": c["sess_rate"],
                "events_per_session": c["eps_mean"],
                "add_to_cart_prob": c["atc_prob"],
                "satisfaction": c["satisfaction"],
                "review_propensity": c["review_p"],
                "campaign_open_p": c["open_p"],
                "campaign_click_p": c["click_p"],
                "campaign_persuade_p": c["persuade_p"],
                "campaign_uplift": channel_uplift(c, "email"),
                "campaign_uplift_sms": channel_uplift(c, "sms"),
                "campaign_uplift_push": channel_uplift(c, "push"),
                "marketing_consent": c["consent"],
                "alive_at_end": c["alive"],
                "dropout_date": pl.Series(dropout.astype(np.int32))
                .cast(pl.Date)
                .scatter(np.nonzero(c["dropout_day"] < 0)[0], None),
                "n_orders": c["n_orders"],
                "net_revenue": np.round(c["revenue"], 2),
                "n_sessions": c["n_sessions"],
                "n_reviews": c["n_reviews"],
            }
        )


# Campaign channels and how each scales a customer's open probability. A send causes an extra
# order when it is opened, clicked and persuades the customer, while alive (the planted uplift);
# the platform's conversion flag is a click followed by any order that day, extra or organic.
CAMPAIGN_CHANNELS = ("email", "sms", "push")
CHANNEL_OPEN_FACTOR = {"email": 1.0, "sms": 1.4, "push": 0.7}
MAX_OPEN_P = 0.95


def channel_uplift(c: dict[str, np.ndarray], channel: str, idx: Any = slice(None)) -> np.ndarray:
    """The planted uplift of a send on ``channel`` to the customers ``idx`` while alive: the
    probability that it causes an extra order, min(open_p * factor, MAX_OPEN_P) * click_p *
    persuade_p."""
    opens = np.minimum(c["open_p"][idx] * CHANNEL_OPEN_FACTOR[channel], MAX_OPEN_P)
    return opens * c["click_p"][idx] * c["persuade_p"][idx]


# The activation feed: <feed>/<YYYY-MM-DD>/*.csv, sent the day after the folder's date.
FEED_COLUMNS = ("campaign_id", "customer_id", "channel")
FEED_COUNTS = ("files", "rows", "invalid_rows", "duplicate_rows", "unknown_customer", "sends")


def read_feed(folder: Path) -> tuple[pl.DataFrame, dict[str, int]]:
    """The rows of the activation feed files in ``folder`` (campaign_id, customer_id, channel;
    other columns ignored), and what was left out: rows without a campaign or customer id or
    with a channel other than email, sms or push, and repeats of a (campaign, customer) pair.

    Raises
    ------
    ValueError
        A file lacks one of the required columns.
    """
    counts = dict.fromkeys(FEED_COUNTS, 0)
    frames = []
    for path in sorted(Path(folder).glob("*.csv")) if Path(folder).is_dir() else []:
        df = pl.read_csv(path, infer_schema=False)
        missing = [col for col in FEED_COLUMNS if col not in df.columns]
        if missing:
            raise ValueError(f"activation feed {path} lacks column(s) {', '.join(missing)}")
        counts["files"] += 1
        frames.append(df.select(pl.col(col).str.strip_chars() for col in FEED_COLUMNS))
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(FEED_COLUMNS, pl.String)), counts
    rows = pl.concat(frames)
    counts["rows"] = rows.height
    valid = rows.filter(
        (pl.col("campaign_id").str.len_chars() > 0)
        & (pl.col("customer_id").str.len_chars() > 0)
        & pl.col("channel").str.to_lowercase().is_in(list(CAMPAIGN_CHANNELS))
    ).with_columns(pl.col("channel").str.to_lowercase())
    counts["invalid_rows"] = rows.height - valid.height
    unique = valid.unique(["campaign_id", "customer_id"], keep="first", maintain_order=True)
    counts["duplicate_rows"] = valid.height - unique.height
    return unique, counts


def _customer_index(ids: pl.Series) -> np.ndarray:
    """0-based customer index of each CRM id (``C00000001`` is 0); -1 for other strings."""
    number = ids.str.extract(r"^C(\d{8})$").cast(pl.Int64, strict=False)
    return (number.fill_null(0) - 1).to_numpy()


def _campaign_truth(
    campaign_id: str,
    day: date,
    channel: str,
    c: dict[str, np.ndarray],
    aud: np.ndarray,
    control: np.ndarray,
) -> dict[str, Any]:
    """The planted effect of one generated campaign: the probability of an extra order its send
    gives each selected customer (uplift while alive, 0 after drop-out), summed and averaged
    over the customers sent and over the control group (what the send would have given)."""
    effect = channel_uplift(c, channel, aud) * c["alive"][aud]
    sent = ~control
    return {
        "campaign_id": campaign_id,
        "send_date": day,
        "channel": channel,
        "selected": int(aud.size),
        "sent": int(sent.sum()),
        "control": int(control.sum()),
        "alive_sent": int(c["alive"][aud][sent].sum()),
        "expected_extra_orders_sent": float(effect[sent].sum()),
        "mean_uplift_sent": float(effect[sent].mean()) if sent.any() else None,
        "mean_uplift_control": float(effect[control].mean()) if control.any() else None,
    }


def _sends_frame(
    campaign_id: str,
    aud: np.ndarray,
    sent_us: np.ndarray,
    channel: str,
    response: dict[str, np.ndarray],
    control: np.ndarray,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "campaign_id": pl.Series([campaign_id] * aud.size, dtype=pl.String),
            "customer_id": customer_ids(aud),
            "sent_at": pl.Series(sent_us).cast(pl.Datetime("us", "UTC")),
            "channel": pl.Series([channel] * aud.size, dtype=pl.String),
            "opened": response["opened"],
            "clicked": response["clicked"],
            "converted": response["converted"],
            "control_group": control,
        },
        schema=_SENDS_SCHEMA,
    )


_SENDS_SCHEMA = {
    "campaign_id": pl.String,
    "customer_id": pl.String,
    "sent_at": pl.Datetime("us", "UTC"),
    "channel": pl.String,
    "opened": pl.Boolean,
    "clicked": pl.Boolean,
    "converted": pl.Boolean,
    "control_group": pl.Boolean,
}
# truth/activation_sends.parquet: one row per send of the activation feed
_ACTIVATION_SCHEMA = {
    "send_date": pl.Date,
    "campaign_id": pl.String,
    "customer_id": pl.String,
    "channel": pl.String,
    "alive_at_send": pl.Boolean,
    "uplift": pl.Float64,
    "extra_order_p": pl.Float64,
    "lambda": pl.Float64,
    "p_dropout": pl.Float64,
    "cancel_rate": pl.Float64,
    "extra_order": pl.Boolean,
}
# truth/activation_customer_sends.parquet: every send to a customer of the activation feed from
# the day of their first feed send on (the feed's and the generated campaigns' sent rows)
_FOLLOWED_SCHEMA = {
    "send_date": pl.Date,
    "campaign_id": pl.String,
    "customer_id": pl.String,
    "uplift": pl.Float64,
}
# truth/campaigns.parquet: one row per generated campaign (see _campaign_truth)
_CAMPAIGN_TRUTH_SCHEMA = {
    "campaign_id": pl.String,
    "send_date": pl.Date,
    "channel": pl.String,
    "selected": pl.Int64,
    "sent": pl.Int64,
    "control": pl.Int64,
    "alive_sent": pl.Int64,
    "expected_extra_orders_sent": pl.Float64,
    "mean_uplift_sent": pl.Float64,
    "mean_uplift_control": pl.Float64,
}
_REVIEWS_SCHEMA = {
    "review_id": pl.String,
    "customer_id": pl.String,
    "product_id": pl.String,
    "reviewed_at": pl.String,
    "rating": pl.Int64,
    "review_text": pl.String,
}
_WEB_SCHEMA = {col: pl.String for col in WEB_EVENTS.columns}


def _content_mess(
    source: str, df: pl.DataFrame, rng: np.random.Generator, m: float, counts: dict[str, int]
) -> pl.DataFrame:
    if m <= 0 or df.height == 0:
        return df
    if source != "crm_customers":
        df, k = mess.unknown_customers(df, rng, m)
        counts["unknown_customer"] += k
    if source == "crm_customers":
        df, k = mess.malformed_emails(df, rng, m)
        counts["malformed_email"] += k
    if source == "orders":
        df, k = mess.bad_prices(df, rng, m)
        counts["bad_price"] += k
    df, k = mess.add_nulls(df, rng, m, NULLABLE[source])
    counts["null"] += k
    return df


def generate(config: GeneratorConfig) -> GenerationSummary:
    """Simulate the world from ``start_date`` to ``end_date`` and write the landing files.

    Parameters
    ----------
    config
        What to simulate and where to write it.

    Returns
    -------
    GenerationSummary
        Rows written per source and day, planted mess per source and kind, files and timing.
    """
    config.validate()
    t0 = time.perf_counter()
    specs = resolve_personas(config.persona_shares)
    world = World(config, specs, build_catalogue(config.seed), build_people_pools(config.seed))
    world.init_population()
    summary = GenerationSummary(
        rows={s.name: {} for s in SOURCES},
        mess={s.name: dict.fromkeys(mess.MESS_KINDS, 0) for s in SOURCES},
    )
    n_days = (config.end_date - config.start_date).days + 1
    m = config.messiness
    first = 0 if config.write_from is None else (config.write_from - config.start_date).days
    for d in range(n_days):
        day = config.start_date + timedelta(days=d)
        base_ms = day_ms(day)
        clean = world.simulate_day(d, day)
        sess = clean.pop("web_sessions")
        if d + mess.MAX_LATE_DAYS < first:
            continue  # not written, and none of its rows arrive late on a day written
        for si, source in enumerate(SOURCES):
            path = source.path_for(config.landing_dir, day)
            rng = _rng(config.seed, d, S_MESS, si)
            counts = summary.mess[source.name]
            if source is WEB_EVENTS:
                expected = int(sess["n_ev"].sum())
                parts = world.web_chunks(d, day, base_ms, sess)
            else:
                parts = clean[source.name]
                expected = sum(p.height for p in parts)
            late_ok = not (source is CRM_CUSTOMERS and d == 0)
            if d < first:
                # not written: only its late rows, which arrive on a day written, are kept
                scratch = dict.fromkeys(mess.MESS_KINDS, 0)
                for part in parts:
                    part = _content_mess(source.name, part, rng, m, scratch)
                    if late_ok and m > 0:
                        _, late = mess.split_late(part, rng, m)
                        for delay, rows in late:
                            if first <= d + delay < n_days:
                                world.pending[source.name].setdefault(d + delay, []).append(rows)
                world.pending[source.name].pop(d, None)
                continue
            writer = DayFileWriter(source, path, _rng(config.seed, d, S_MESS, si, 1), m, expected)
            wrote = False
            for part in parts:
                part = _content_mess(source.name, part, rng, m, counts)
                if late_ok and m > 0:
                    part, late = mess.split_late(part, rng, m)
                    for delay, rows in late:
                        if d + delay < n_days:
                            world.pending[source.name].setdefault(d + delay, []).append(rows)
                writer.write(part)
                wrote = True
            arriving = world.pending[source.name].pop(d, [])
            for rows in arriving:
                counts["late"] += rows.height
                writer.write(rows)
                wrote = True
            if not wrote:
                writer.write(_empty(source))
            writer.close()
            counts["duplicate"] += writer.counts["duplicate"]
            counts["malformed_line"] += writer.counts["malformed_line"]
            summary.rows[source.name][day] = writer.rows
            summary.files.append(path)
    # ground truth
    truth = Path(config.truth_dir)
    truth.mkdir(parents=True, exist_ok=True)
    world.truth_frame().write_parquet(truth / "customers.parquet")
    pl.DataFrame(world.campaign_truth, schema=_CAMPAIGN_TRUTH_SCHEMA).write_parquet(
        truth / "campaigns.parquet"
    )
    if config.activation_feed_dir is not None:
        pl.concat(
            [pl.DataFrame(schema=_ACTIVATION_SCHEMA), *world.feed_truth], how="vertical"
        ).write_parquet(truth / "activation_sends.parquet")
        pl.concat(
            [pl.DataFrame(schema=_FOLLOWED_SCHEMA), *world.followed_sends], how="vertical"
        ).write_parquet(truth / "activation_customer_sends.parquet")
        summary.activation = dict(world.feed_counts)
    params = {
        "config": {
            k: (str(v) if isinstance(v, (Path, date)) else v) for k, v in asdict(config).items()
        },
        "personas": [asdict(s) for s in specs],
        "categories": list(CATEGORIES),
        "channels": list(CHANNELS),
        "topics": list(TOPICS),
        "countries": [x.code for x in COUNTRIES],
        "rates": {
            "signup_rate_per_day": SIGNUP_RATE,
            "crm_change_rate_per_day": CHANGE_RATE,
            "anonymous_session_share": ANON_SHARE,
            "dead_browse_factor": DEAD_BROWSE,
        },
        # a send is opened with min(open_p * factor, max_open_p), clicked with click_p after an
        # open; while alive, a click causes an extra order with persuade_p (the uplift); the
        # platform's conversion is a click followed by any order of the day, so
        # P(converted) = P(alive) * open * click_p * (1 - (1 - persuade_p) * exp(-lambda))
        "campaign_funnel": {
            "channel_open_factor": CHANNEL_OPEN_FACTOR,
            "max_open_p": MAX_OPEN_P,
            "uplift": "min(open_p * channel_open_factor, max_open_p) * click_p * persuade_p",
            "converted": "clicked and alive and (persuaded or an organic order that day)",
            "extra_orders_count_toward_dropout": False,
            "persuade_p": UPLIFT,
        },
        "mess": summary.mess,
        # what the activation feed's files held and what was sent (None without a feed)
        "activation_feed": dict(world.feed_counts) if world.feed_dir is not None else None,
    }
    (truth / "params.json").write_text(json.dumps(params, indent=2, default=str))
    summary.n_customers_total = world.n
    summary.seconds = time.perf_counter() - t0
    return summary


def _empty(source: Source) -> pl.DataFrame:
    if source is CAMPAIGN_SENDS:
        return pl.DataFrame(schema=_SENDS_SCHEMA)
    if source is REVIEWS:
        return pl.DataFrame(schema=_REVIEWS_SCHEMA)
    if source is ORDERS:
        return pl.DataFrame(schema=dict.fromkeys(ORDERS.columns, pl.String))
    return pl.DataFrame(schema=dict.fromkeys(source.columns, pl.String))
