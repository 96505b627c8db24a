"""Review text assembled from phrase banks.

Each review has a primary topic (and sometimes a second one) with topic-specific vocabulary,
and a sentiment that follows its star rating, so topic models and lexicon sentiment scorers can
recover both.
"""

from __future__ import annotations

import numpy as np

from seg_pipeline.generator.catalogue import CATEGORIES, PRODUCT_NOUNS, TOPICS

# topic -> sentiment -> templates; {item} is a product noun
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "delivery": {
        "pos": (
            "Delivery was fast and the parcel arrived a day early.",
            "Shipping was quick and the courier was friendly.",
            "The {item} arrived the next day, great delivery service.",
            "Super fast shipping, the parcel was tracked all the way to my door.",
            "Arrived on time as promised, really impressed with the delivery.",
        ),
        "neg": (
            "Delivery was terrible, the parcel arrived a week late.",
            "Shipping took forever and the tracking never updated.",
            "The courier left the parcel in the rain and it arrived late.",
            "Still waiting for the delivery after ten days, awful shipping.",
            "The {item} was delayed twice and the courier lost the parcel.",
        ),
        "mid": (
            "Delivery took a few days longer than expected.",
            "The parcel arrived, but the tracking was confusing.",
        ),
    },
    "quality": {
        "pos": (
            "The {item} is excellent quality and feels really solid.",
            "I love this {item}, the build quality is superb.",
            "Great quality {item}, well made and works perfectly.",
            "Beautiful {item}, the material is sturdy and durable.",
            "Works perfectly and the quality is better than I expected.",
        ),
        "neg": (
            "The {item} broke after two days, really poor quality.",
            "Cheap material and the {item} stopped working within a week.",
            "Terrible quality, the {item} was defective out of the box.",
            "Very disappointed, the {item} feels flimsy and badly made.",
            "The stitching came apart and the {item} is falling to pieces.",
        ),
        "mid": (
            "The {item} is okay, the quality is average for what it is.",
            "Decent {item} but the material feels a bit thin.",
        ),
    },
    "price": {
        "pos": (
            "Great value for money, much cheaper than elsewhere.",
            "Bought the {item} on sale and it was a real bargain.",
            "Excellent price for a {item} like this, great value.",
            "Affordable and worth every penny, the discount made it a steal.",
        ),
        "neg": (
            "Way too expensive for what you get, not worth the money.",
            "Overpriced {item}, I found it cheaper elsewhere the next day.",
            "Poor value, the price went up right after I paid.",
            "A rip-off at this price, I feel cheated.",
        ),
        "mid": (
            "The price is fair, though not a bargain.",
            "A bit pricey but the {item} does the job.",
        ),
    },
    "service": {
        "pos": (
            "Customer service was helpful and answered my question within an hour.",
            "The support team was friendly and sorted out my refund quickly.",
            "Fantastic customer service, the agent was polite and helpful.",
            "Support replied fast and really went the extra mile.",
        ),
        "neg": (
            "Customer service was rude and never answered my emails.",
            "Awful support, I was on hold for an hour and nobody helped.",
            "The support team ignored my complaint about the {item}, terrible service.",
            "Still no refund after weeks of chasing customer service, disappointed.",
        ),
        "mid": (
            "Customer service answered eventually, but it took a while.",
            "Support was polite, although the agent could not really help.",
        ),
    },
    "size_fit": {
        "pos": (
            "The size is perfect and the {item} fits like a glove.",
            "Fits true to size and is very comfortable to wear.",
            "Great fit, I ordered my usual size and it is just right.",
            "Comfortable fit and the sizing chart was accurate.",
        ),
        "neg": (
            "The {item} runs far too small, the size chart is wrong.",
            "Terrible fit, way too tight around the shoulders.",
            "The sizing is off, it is huge and I had to return it.",
            "Uncomfortable and the wrong size even though I ordered my usual size.",
        ),
        "mid": (
            "The fit is fine, maybe a little loose.",
            "Size is roughly right, but the sleeves are long.",
        ),
    },
    "packaging": {
        "pos": (
            "Nicely packaged, the box was sturdy and well protected.",
            "Lovely packaging, it would make a great gift.",
            "The {item} was wrapped carefully with recyclable packaging.",
            "Well packed and the box was neat and eco friendly.",
        ),
        "neg": (
            "The box was crushed and the packaging was torn open.",
            "Awful packaging, the {item} was loose in a huge box and damaged.",
            "The packaging was ripped and the seal was broken, disappointed.",
            "Far too much plastic packaging and the box arrived dented.",
        ),
        "mid": (
            "The packaging was plain but did its job.",
            "The box was a bit big for the {item}, but nothing was damaged.",
        ),
    },
}

CLOSERS: dict[str, tuple[str, ...]] = {
    "pos": (
        "Highly recommend!",
        "Would definitely buy again.",
        "Really happy with my purchase.",
        "Love it, five stars from me.",
        "Great shop, I will be back.",
    ),
    "neg": (
        "Would not recommend.",
        "Never ordering from here again.",
        "Really disappointed with this purchase.",
        "Worst shopping experience I have had.",
        "Avoid.",
    ),
    "mid": (
        "It is okay overall.",
        "Not bad, not great.",
        "Might order again.",
    ),
}

POSITIVE_WORDS = (
    "love",
    "great",
    "excellent",
    "perfect",
    "happy",
    "fantastic",
    "recommend",
    "superb",
    "impressed",
    "bargain",
)
NEGATIVE_WORDS = (
    "terrible",
    "disappointed",
    "awful",
    "poor",
    "broke",
    "worst",
    "rude",
    "avoid",
    "defective",
    "damaged",
)


def sentiment_for(rating: int) -> str:
    """Sentiment bucket of a star rating."""
    return "pos" if rating >= 4 else ("neg" if rating <= 2 else "mid")


def review_text(
    rng: np.random.Generator, rating: int, topic: int, second_topic: int, category: int
) -> str:
    """Assemble a 1-4 sentence review.

    Parameters
    ----------
    rng
        Random generator.
    rating
        Star rating 1-5; drives the sentiment of the sentences.
    topic, second_topic
        Indices into :data:`TOPICS`; the second topic is used for an optional extra sentence.
    category
        Index into :data:`CATEGORIES`, used to name the product.

    Returns
    -------
    str
    """
    nouns = PRODUCT_NOUNS[CATEGORIES[category]]
    item = nouns[int(rng.integers(len(nouns)))]
    mood = sentiment_for(rating)

    def pick(topic_idx: int, m: str) -> str:
        bank = PHRASES[TOPICS[topic_idx]][m]
        return bank[int(rng.integers(len(bank)))].format(item=item)

    first_mood = mood if mood != "mid" else ("pos" if rng.random() < 0.5 else "mid")
    sentences = [pick(topic, first_mood)]
    if rng.random() < 0.5:
        again = pick(topic, mood if mood != "mid" else "neg")
        if again != sentences[0]:
            sentences.append(again)
    if second_topic != topic and rng.random() < 0.35:
        sentences.append(pick(second_topic, mood))
    if rng.random() < 0.5:
        bank = CLOSERS[mood]
        sentences.append(bank[int(rng.integers(len(bank)))])
    return " ".join(sentences[:4])


def count_words(text: str, words: tuple[str, ...]) -> int:
    """How many of ``words`` occur (as substrings) in lower-cased ``text``."""
    t = text.lower()
    return sum(t.count(w) for w in words)
