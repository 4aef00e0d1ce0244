"""The fast tokenizer gives exactly NLTK's `NLTKWordTokenizer` tokens."""

from nltk.tokenize import NLTKWordTokenizer

from extes.corpus.formats import read_corpus
from extes.corpus.seeds import seeds_dir
from extes.corpus.stats import FastWordTokenizer, word_tokens

TRICKY = [
    '"Hello," she said -- (really) [sic] {x} <y> can\'t won\'t gonna I\'d\'ve',
    "«quoted» ‘single’ $3.88 3,36 euros... end.",
    "''double'' ``tick`` wanna gimme lemme 'tis 'twas Cannot GONNA d'ye more'n",
    "a  b\t\tc\nd", "'quoted' word's", "—dash– ‒ ―", "x*y @me #tag 100% a&b; c: d,e 1,000", "I can't sleep.",
]


def test_identical_to_nltk_on_the_seed_set_and_tricky_strings():
    texts = [t.text for d in read_corpus(seeds_dir()).dialogues for t in d.turns] + TRICKY
    nltk_tok, fast = NLTKWordTokenizer(), FastWordTokenizer()
    assert [fast.tokenize(t) for t in texts] == [nltk_tok.tokenize(t) for t in texts]
    assert word_tokens("I can't sleep.") == ["I", "ca", "n't", "sleep", "."]


def test_identical_on_esconv(esconv_file):
    texts = [t.text for d in read_corpus(esconv_file).dialogues for t in d.turns]
    nltk_tok, fast = NLTKWordTokenizer(), FastWordTokenizer()
    assert [fast.tokenize(t) for t in texts] == [nltk_tok.tokenize(t) for t in texts]
