"""What the words of a question do: carry no topic, say who is asking, name the kind of
question, or name its subject; and the word families Porter stemming leaves apart.

None of this is clinical content: it is how people phrase questions, and how common a word is
in English (index/english.py, from wordfreq).
"""

from __future__ import annotations

from collections.abc import Callable

# Question and filler words carry no topic; without this, "what causes X" would need "what"
# in the text. They still count inside a synonym group ("how common" = "prevalence"). "Use"
# is the one in "what is X used for", "can I use X", "opioid use": the answer says "reliance
# on opioids", and a title like "Can ... Be Used to Treat ..." is no answer to it.
QUESTION_WORDS = """
what whats how why which who whom whose where does do did doing i me my should would could
there any about tell know get got overview options use uses used using has had was were
been am its than then so but some more most such too very make makes making made feel
feels felt help helps helped helping go goes going take takes taking want wants wanted
ever always never
""".split()
# Words about the asker and the conversation, which long questions are full of ("my wife was
# told last year ... I was wondering"): no snippet is about them.
ASKER_WORDS = """
im ive id hi hello dear thanks thank please wondering wonder wondered curious hoping hope
worried concerned question questions anyone someone somebody anybody really actually also
just maybe lately recently currently told heard read ask asking asked wife husband son
daughter mother mom mum dad father parent parents child children kid kids baby friend
family sister brother grandmother grandfather grandma grandpa aunt uncle cousin boyfriend
girlfriend partner we our us he she her him his they them their nephew niece grandson
granddaughter husbands wifes moms dads sons daughters
dont doesnt didnt cant couldnt wont wouldnt isnt wasnt arent havent hasnt shouldnt youre
""".split()
# Vague nouns ("stomach problems") and the qualifiers of classification display names
# ("Major depressive disorder, single episode, unspecified"; "NOS": not otherwise specified,
# "NEC": not elsewhere classified): they name no subject.
VAGUE_WORDS = "problem problems issue issues thing things stuff unspecified nos nec".split()
FILLER_WORDS = frozenset(QUESTION_WORDS + ASKER_WORDS + VAGUE_WORDS)

# The kind of question, where the words say it, and the words of section headings that answer
# that kind ("Treatment", "Causes", "Inheritance" in NIH pages; "How Vagus Nerve Stimulation
# Works" in the seeds). A question of a kind ranks those sections higher; its kind words are
# not required of an answer.
QUESTION_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "treatment": (("treat", "treated", "treatment", "treatments", "therapy", "therapies",
                   "cure", "cured", "manage", "management"),
                  ("treatment", "therapy", "management")),
    "causes": (("cause", "causes", "caused", "why"), ("causes",)),
    "inheritance": (("inherited", "inherit", "inheritance", "hereditary", "genetic"),
                    ("inheritance", "genetic")),
    "symptoms": (("symptoms", "symptom", "signs"), ("symptoms", "signs")),
    "diagnosis": (("diagnosed", "diagnose", "diagnosis", "test", "tests", "tested"),
                  ("exams", "tests", "diagnosis")),
    "outlook": (("outlook", "prognosis", "survival"), ("outlook", "prognosis")),
    "prevention": (("prevent", "prevented", "prevention", "avoid"), ("prevention",)),
    "frequency": (("how common", "how many people", "prevalence"), ("frequency",)),
    "side effects": (("side effects", "risks", "safe", "safety"),
                     ("side effects", "safety", "risks")),
    "how it works": (("work", "works", "working"), ("works",)),
    "research": (("research", "studies", "trials"), ("research", "studies", "trials")),
    "complications": (("complications", "complication"), ("complications",)),
}

# Zipf frequency (log10 per billion words) at or above which a word is everyday English
# ("pain" 5.0, "lower" 5.1, "technique" 4.5, "recovery" 4.6): on its own it says little about
# what a question is about. Below RARE a word names a subject ("fibromyalgia" 2.6, "vagus"
# 2.4, "mellitus" 2.8). Below REAL_WORD a word that is not in the index is taken for a
# misspelling ("migrane" 1.1, "vagas" 1.2), never above (a rarely used real word).
GENERIC_ZIPF = 4.5
RARE_ZIPF = 3.5
REAL_WORD_ZIPF = 2.0

# Derivations Porter's stemmer keeps apart: "safe" / "safety", "treat" / "treatment",
# "acid" / "acidity". Longest first.
_FAMILY_SUFFIXES = ("ment", "ity", "ty")
_MIN_ROOT = 4


def family_stems(word: str, stem: str, stem_of: Callable[[str], str | None],
                 is_word: Callable[[str], bool] = lambda word: True) -> list[str]:
    """Stems of the same word family as `word` (whose stem is `stem`), other than `stem`;
    `stem_of` gives a word's stem, or None when the index does not have it; `is_word` says
    cheaply whether a made-up candidate is a word at all."""
    candidates = []
    for base in dict.fromkeys((word, stem)):
        candidates += [base + suffix for suffix in _FAMILY_SUFFIXES]
        if base.endswith("e"):
            candidates += [base[:-1] + "ity"]
    for suffix in _FAMILY_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_ROOT:
            candidates.append(word[:-len(suffix)])
    found = []
    for candidate in candidates:
        if not is_word(candidate):
            continue
        other = stem_of(candidate)
        if other and other != stem and other not in found:
            found.append(other)
    return found
