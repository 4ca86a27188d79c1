"""Repetition controls, token choice, loop detection, stop sequences and GenerateArgs checks."""

from __future__ import annotations

import math

import pytest
import torch

from bonsai.errors import BonsaiError
from bonsai.generate.args import GenerateArgs, deterministic_args
from bonsai.generate.controls import (
    AnswerState,
    LoopWatch,
    apply_controls,
    choose_token,
    digit_tokens,
    first_stop,
    held_back,
    weigh_context,
)


def state_of(tokens: list[int], n: int) -> AnswerState:
    state = AnswerState(n)
    for token in tokens:
        state.add(token)
    return state


def test_no_repeat_ngram_bans_the_token_that_would_repeat_a_trigram() -> None:
    state = state_of([5, 6, 7, 1, 5, 6], n=3)
    # "5 6" was followed by 7 once: 7 now would repeat the trigram "5 6 7".
    assert state.banned() == {7}
    assert state_of([5, 6, 7, 1, 2], n=3).banned() == set()
    assert state_of([5, 6, 7, 5, 6], n=0).banned() == set()


def test_repetition_penalty_lowers_seen_tokens_both_signs_and_ban_is_minus_infinity() -> None:
    args = GenerateArgs(repetition_penalty=2.0, no_repeat_ngram_size=2)
    logits = torch.tensor([4.0, -1.0, 3.0, 0.5, 2.0])
    state = state_of([0, 1, 0], n=2)  # "0" was followed by "1": after "0", 1 is banned
    out = apply_controls(logits.clone(), state, args)
    assert out[0] == 2.0  # positive score halved
    assert math.isinf(out[1]) and out[1] < 0  # banned (and would have been doubled to -2)
    assert out[2] == 3.0 and out[3] == 0.5 and out[4] == 2.0  # unseen tokens untouched


def test_penalty_off_changes_nothing() -> None:
    args = GenerateArgs(repetition_penalty=1.0, no_repeat_ngram_size=0)
    logits = torch.tensor([1.0, -2.0, 3.0])
    assert torch.equal(apply_controls(logits.clone(), state_of([0, 1, 2], 0), args), logits)


def test_choose_token_greedy_and_seeded_sampling() -> None:
    logits = torch.tensor([0.0, 5.0, 4.9, -3.0])
    assert choose_token(logits, deterministic_args()) == 1
    args = GenerateArgs(temperature=1.0, top_k=2, top_p=1.0)
    draws = [choose_token(logits, args, torch.Generator().manual_seed(s)) for s in range(40)]
    assert set(draws) == {1, 2}  # top-k=2: never the others, and both of the two get drawn
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert [choose_token(logits, args, g1) for _ in range(10)] == [
        choose_token(logits, args, g2) for _ in range(10)
    ]


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.tensor([10.0, 0.0, 0.0, 0.0])  # token 0 holds ~99.99% of the mass
    args = GenerateArgs(temperature=1.0, top_k=0, top_p=0.5)
    assert {choose_token(logits, args, torch.Generator().manual_seed(s)) for s in range(30)} == {0}


def feed(watch: LoopWatch, tokens: list[int]) -> int | None:
    for i, token in enumerate(tokens):
        cut = watch.add(token)
        if cut is not None:
            return cut if i == len(tokens) - 1 else -1  # -1: found too early
    return None


def test_loop_watch_cuts_back_to_one_copy_of_the_block() -> None:
    block = [11, 12, 13, 14, 15, 16, 17, 18]  # 8 tokens, 3 copies = 24 = min_span
    prefix = [1, 2, 3]
    tokens = prefix + block * 3
    cut = feed(LoopWatch(max_period=64, min_span=24), tokens)
    assert cut == len(prefix) + len(block)
    assert tokens[:cut] == prefix + block


def test_loop_watch_needs_the_span_for_short_periods() -> None:
    # "ha ha ha": 3 copies of a 1-token block is no loop; 24 copies is.
    assert feed(LoopWatch(64, 24), [1, 2, 7, 7, 7, 3]) is None
    assert feed(LoopWatch(64, 24), [1, 2] + [7] * 24) == 3
    # Two copies of a long block (a deliberate parallel) is no loop either.
    assert feed(LoopWatch(64, 24), list(range(30)) * 2) is None


def test_loop_watch_suspect_holds_back_the_repeating_tail() -> None:
    watch = LoopWatch(64, 24)
    for token in [1, 2, 3, 4, 9, 9, 1, 2, 3, 4]:
        watch.add(token)
    assert watch.suspect() == 4  # "1 2 3 4" repeats the block six tokens before it


def test_stop_sequences_and_hold_back() -> None:
    assert first_stop("abc\n### Input", ("\n### ",)) == 3
    assert first_stop("abc", ("\n### ",)) is None
    assert first_stop("xx STOP yy STOP", ("STOP",), search_from=8) == 11
    assert first_stop("xx STOP yy STOP", ("STOP",), search_from=5) == 3  # straddles the start
    assert held_back("answer\n##", ("\n### ",)) == 3  # may become the stop: wait
    assert held_back("answer", ("\n### ",)) == 0
    assert held_back("日本\ufffd", ()) == 1  # an unfinished character


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_new_tokens", 0),
        ("temperature", -1.0),
        ("top_p", 0.0),
        ("top_k", -1),
        ("repetition_penalty", 0.5),
        ("no_repeat_ngram_size", -2),
        ("stop", ("",)),
        ("loop_min_span", 1),
        ("context_weight", -0.1),
        ("context_weight", 2.5),
    ],
)
def test_bad_generate_args_name_the_field(field: str, value: object) -> None:
    with pytest.raises(BonsaiError) as info:
        GenerateArgs(**{field: value})
    assert info.value.field == field


def test_with_stop_merges_without_duplicates_and_greedy_flag() -> None:
    args = GenerateArgs(stop=("a",)).with_stop(("b", "a"))
    assert args.stop == ("a", "b")
    assert deterministic_args().greedy and GenerateArgs(temperature=0).greedy
    assert not GenerateArgs().greedy
    assert args.to_dict()["stop"] == ["a", "b"]


def test_a_digit_inside_a_number_is_not_penalised_but_a_new_number_is() -> None:
    digits = digit_tokens(enumerate(["a", "2", "▁7", "cm", "２", "22x", "²"]))
    assert digits == {1, 2, 4, 6}
    args = GenerateArgs(repetition_penalty=2.0, no_repeat_ngram_size=0)
    state = AnswerState(0, digits)
    state.add(1)  # "2"
    out = apply_controls(torch.tensor([1.0, 4.0, 1.0, 4.0]), state, args)
    assert out.tolist() == [1.0, 4.0, 1.0, 4.0]  # "2" may come again: "22"
    state.add(3)  # "cm"
    out = apply_controls(torch.tensor([1.0, 4.0, 1.0, 4.0]), state, args)
    assert out.tolist() == [1.0, 2.0, 1.0, 2.0]  # a new number's "2" is penalised, as is "cm"


def test_context_weighing_lifts_what_the_context_adds_among_plausible_tokens() -> None:
    # Token 1 is what the model says anyway; token 2 is what the notes make likely; token 3 is
    # unlikely with the notes (below a tenth of the best) and more unlikely without them.
    with_notes = torch.tensor([0.0, 3.0, 2.8, 0.2])
    without = torch.tensor([0.0, 3.0, 0.5, -4.0])
    scores = weigh_context(with_notes, without, 0.5)
    assert int(torch.argmax(with_notes)) == 1 and int(torch.argmax(scores)) == 2
    assert scores[2].item() == pytest.approx(1.5 * 2.8 - 0.5 * 0.5)
    # Implausible with the notes: never lifted by the difference, however large.
    assert scores[0].item() == -math.inf and scores[3].item() == -math.inf
    # Softmax of the scores is p^(1+w) / q^w, renormalised over the plausible tokens.
    p, q = torch.softmax(with_notes, -1), torch.softmax(without, -1)
    expected = p[1:3] ** 1.5 / q[1:3] ** 0.5
    assert torch.allclose(torch.softmax(scores, -1)[1:3], expected / expected.sum(), atol=1e-6)
    # The same prompt on both sides changes no plausible token's score.
    same = weigh_context(with_notes, with_notes, 0.5)
    assert torch.allclose(same[1:3], with_notes[1:3])
