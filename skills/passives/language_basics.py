"""Language basics: plurals, antonyms, synonyms, past tenses and articles. The word
pairs are built in (no network, no extra package); a/an draws from the word bank."""

from __future__ import annotations

from random import Random

from ..registration import primitive
from ._common import common_words

PLURALS = {
    "cat": "cats", "dog": "dogs", "box": "boxes", "bus": "buses", "city": "cities",
    "baby": "babies", "day": "days", "key": "keys", "leaf": "leaves", "knife": "knives",
    "wolf": "wolves", "child": "children", "man": "men", "woman": "women", "mouse": "mice",
    "tooth": "teeth", "foot": "feet", "goose": "geese", "person": "people", "sheep": "sheep",
    "fish": "fish", "deer": "deer", "church": "churches", "wish": "wishes", "glass": "glasses",
    "hero": "heroes", "potato": "potatoes", "piano": "pianos", "photo": "photos",
    "party": "parties", "story": "stories", "toy": "toys", "boy": "boys", "ox": "oxen",
    "cactus": "cacti", "crisis": "crises", "book": "books", "tree": "trees", "watch": "watches",
    "fox": "foxes", "lady": "ladies", "wife": "wives", "life": "lives", "half": "halves",
}
ANTONYMS = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark",
    "up": "down", "open": "closed", "early": "late", "full": "empty", "hard": "soft",
    "high": "low", "old": "young", "rich": "poor", "strong": "weak", "wet": "dry",
    "loud": "quiet", "thick": "thin", "wide": "narrow", "clean": "dirty", "first": "last",
    "inside": "outside", "above": "below", "true": "false", "win": "lose", "push": "pull",
    "buy": "sell", "give": "take", "start": "finish", "day": "night", "love": "hate",
    "long": "short", "near": "far", "safe": "dangerous", "sharp": "dull",
}
SYNONYMS = {
    "big": "large", "small": "little", "fast": "quick", "begin": "start", "end": "finish",
    "happy": "glad", "angry": "mad", "shut": "close", "correct": "right", "simple": "easy",
    "gift": "present", "sick": "ill", "rock": "stone", "road": "street", "jump": "leap",
    "quiet": "silent", "smart": "clever", "scared": "afraid", "couch": "sofa", "buy": "purchase",
    "shout": "yell", "error": "mistake", "town": "village", "choose": "pick", "help": "assist",
}
PAST = {
    "walk": "walked", "play": "played", "go": "went", "eat": "ate", "see": "saw", "run": "ran",
    "write": "wrote", "take": "took", "make": "made", "think": "thought", "bring": "brought",
    "buy": "bought", "swim": "swam", "sing": "sang", "drink": "drank", "stop": "stopped",
    "try": "tried", "carry": "carried", "jump": "jumped", "dance": "danced", "fly": "flew",
    "know": "knew", "speak": "spoke", "break": "broke", "choose": "chose", "fall": "fell",
    "find": "found", "give": "gave", "have": "had", "hold": "held", "keep": "kept",
    "leave": "left", "lose": "lost", "meet": "met", "pay": "paid", "sell": "sold",
    "send": "sent", "sit": "sat", "sleep": "slept", "stand": "stood", "teach": "taught",
    "tell": "told", "win": "won", "cut": "cut", "put": "put", "read": "read", "plan": "planned",
}


def _both_ways(table: dict[str, str]) -> dict[str, str]:
    """Antonyms and synonyms read both ways; a word may have only one answer."""
    out = dict(table)
    for a, b in table.items():
        assert out.setdefault(b, a) == a, f"{b!r} would have two answers"
    return out


ANTONYMS, SYNONYMS = _both_ways(ANTONYMS), _both_ways(SYNONYMS)


def _pair(rng: Random, table: dict[str, str], size: int) -> tuple[str, str]:
    keys = list(table)[:size]
    w = keys[rng.randrange(len(keys))]
    return w, table[w]


def _lookup(table: dict[str, str], ask: str):
    """A primitive that asks about one word of a table (the first `size` entries)."""
    def make(rng: Random, k: dict) -> tuple[str, str]:
        w, answer = _pair(rng, table, k["size"])
        return ask.format(w=w), answer
    return make


for _pid, _table, _ask in (
        ("lang_plural", PLURALS, 'What is the plural of "{w}"? Answer with the word only.'),
        ("lang_antonym", ANTONYMS, 'What is the opposite of "{w}"? Answer with one word.'),
        ("lang_synonym", SYNONYMS, 'Give a word that means the same as "{w}" (as in our word list). '
                                   'Answer with one word.'),
        ("lang_past_tense", PAST, 'What is the past tense of "{w}"? Answer with the word only.')):
    primitive(_pid, size=len(_table))(_lookup(_table, _ask))


@primitive("lang_article", rank=5000)
def article(rng: Random, k: dict) -> tuple[str, str]:
    # Words whose sound the spelling does not settle (hour, unit, one, euro) are left out.
    while True:
        (w,) = common_words(rng, 1, k["rank"])
        if w[0] not in "hu" and not w.startswith(("eu", "one", "once")):
            break
    return f"Which article goes before \"{w}\": a or an?", "an" if w[0] in "aeio" else "a"
