import re

import realm_skills as skills
from realm_skills import wordbank
from realm_skills.generators.syllacrostic import MASK, _segmentations, _spellings
from realm_skills.wordbank import cache_path, cached_bank, clean_definition, word_bank


def test_word_bank_comes_from_offline_packages():
    bank = word_bank()
    assert len(bank.words) > 5000
    for w in bank.words[:200]:
        assert "".join(w.syllables) == w.text and len(w.syllables) >= 2
        assert w.text[: max(4, len(w.text) - 2)] not in w.clue.lower()
    band = bank.band(2, 0, 1000)
    assert band and all(w.rank < 1000 and len(w.syllables) == 2 for w in band)
    assert all(w.text[0] == "c" for w in bank.band(3, 0, 20000, initial="c"))


def test_word_bank_is_built_once_and_kept_in_a_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_CACHE_DIR", str(tmp_path / "cache"))
    path = cache_path()
    assert path.parent == tmp_path / "cache" and path.name.startswith("wordbank-")
    built = cached_bank(path)
    assert path.is_file(), "the first build is kept"
    again = cached_bank(path)
    assert again.words == built.words == word_bank().words and again.hidden == built.hidden
    assert again.band(2, 0, 1000) == built.band(2, 0, 1000), "the index is rebuilt from the file"
    # A broken cache (a crash mid-copy, a disk error, an older layout) is rebuilt, not fatal
    # (the rebuild is counted, not redone: the first one above was real).
    builds = []
    monkeypatch.setattr(wordbank, "build_word_bank", lambda: builds.append(1) or built)
    for junk in (b"{not json", b'{"words": [[1]], "hidden": []}', b"[]"):
        path.write_bytes(junk)
        assert cached_bank(path).words == built.words
        assert path.read_bytes() != junk, "and rewritten"
    # A cache folder that cannot be written (a file stands there) costs a rebuild, nothing else.
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert cached_bank(blocked / "wordbank-x.json").words == built.words
    assert len(builds) == 4
    assert not list(tmp_path.glob("cache/.wordbank-*")), "no temp file is left behind"


def test_word_bank_cache_key_follows_the_data_packages(tmp_path, monkeypatch):
    from importlib import metadata
    monkeypatch.setenv("REALM_CACHE_DIR", str(tmp_path))
    first = cache_path()
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda d: "9.9" if d == "pyphen" else real(d))
    assert cache_path() != first, "a new pyphen means a new bank"


def test_definitions_that_point_elsewhere_or_give_the_word_away_are_dropped():
    assert clean_definition("Same as Candle.", "taper") is None
    assert clean_definition("imp. & p. p. of Run.", "ran") is None
    assert clean_definition("One who owns a candle shop", "candle") is None
    got = clean_definition("A light [1913 Webster] made of wax; used at night", "candle")
    assert got == "A light made of wax"


def test_puzzles_use_only_bank_syllables_and_answers_are_unique():
    for level in (2, 5, 9, 10, 20, 35, 50):
        for p in skills.generate("sy", level, 20, seed=level):
            words = p.metadata["words"]
            bank_line = next((ln for ln in p.question.splitlines() if ln.startswith("Bank: ")), None)
            if p.metadata["op"] == "join":
                continue
            bank = bank_line[len("Bank: "):].lower().split(" · ")
            syllables = {w.text: w.syllables for w in word_bank().words if w.text in words}
            for w in words:
                # Distractors never add a spelling: only the answers' own syllables can
                # spell an answer in more than one way.
                assert _segmentations(w, bank) == _segmentations(
                    w, [s for x in words for s in syllables[x]]) >= 1, (w, bank)
            if p.metadata["op"] in ("split", "clue"):
                assert _segmentations(words[0], bank) == 1
            if p.metadata["op"] == "pattern":
                assert len(_spellings(bank, p.metadata["pattern"])) == 1
                assert bank_line[6:] == bank_line[6:].upper()  # capitals: one token a letter
            if p.metadata["op"] == "leftover":
                used = [s for w in word_bank().words if w.text in words for s in w.syllables]
                left = sorted(bank)
                for s in used:
                    left.remove(s)
                assert p.final == ", ".join(sorted(left)).upper()
            if p.metadata["op"] == "acrostic":
                assert p.final == "".join(w[0] for w in words).upper() == p.metadata["hidden"].upper()


def test_signal_degrades_with_level():
    low, high = skills.level_def("sy", 3), skills.level_def("sy", 50)
    assert high.reveal < low.reveal and high.distractors > low.distractors
    assert high.clue_words < low.clue_words and high.clue_mask > low.clue_mask
    assert high.rank[1] > low.rank[1] and high.syllables[1] > low.syllables[1]
    top = skills.generate("sy", 50, 30, seed=1)
    clued = [p for p in top if re.search(r"^\d+\. \(", p.question, re.M)]
    assert clued and any(MASK in p.question for p in clued)
    assert not any(re.search(r"letters, [A-Z_]+\)", p.question) for p in clued)  # no letters shown
    early = skills.generate("sy", 3, 10, seed=1)
    assert all(re.search(r"\(\d+ letters, [A-Z_]+\)", p.question) for p in early)


def test_answers_are_capitals_and_work_lines_show_the_assembly():
    p = next(p for p in skills.generate("sy", 8, 5, seed=3) if p.primitive_id == "sy_bank")
    lines = p.answer.splitlines()
    assert lines[-1] == f"Answer: {p.final}" and p.final == p.final.upper()
    for i, w in enumerate(p.metadata["words"], start=1):
        assert re.fullmatch(rf"{i}\. [A-Z+]+ = {w.upper()}", lines[i - 1])
