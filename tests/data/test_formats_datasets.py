"""One test per public dataset adapter, on rows written from each dataset card (not copied data).

Each test ingests a small fixture with the format auto-detected, exports ``--kind raw`` and
checks every label: its winner, ties, strength, annotator and dimension.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.data.formats_helpers import raw_verdicts, run, stats, write_json_array, write_jsonl

IMPORT = "import:{}"


def test_hh_rlhf_skips_and_counts_identical_rows(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello there.", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."},
        {"chosen": "\n\nHuman: Same?\n\nAssistant: Yes.", "rejected": "\n\nHuman: Same?\n\nAssistant: Yes."},
    ]
    report = run(sqlite_engine, write_jsonl(tmp_path / "hh.jsonl", rows))
    assert (report.format, report.rows, report.degenerate, report.labels_added) == ("hh-rlhf", 2, 1, 1)
    assert raw_verdicts(sqlite_engine, tmp_path) == [("Hello there.", IMPORT.format("hh.jsonl"), "overall", None)]


def test_trl_conversational_round_trip_keeps_messages(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "prompt": [{"role": "user", "content": "2+2?"}],
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "5"}],
        },
        {"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."},
    ]
    report = run(sqlite_engine, write_jsonl(tmp_path / "trl.jsonl", rows))
    assert report.format == "trl" and report.labels_added == 2
    assert [v[0] for v in raw_verdicts(sqlite_engine, tmp_path)] == ["4", "Hi!"]
    from prefloop.data.export import export_labels

    export_labels(sqlite_engine, str(tmp_path / "trl_out.jsonl"))
    out = {json.dumps(r["prompt"]): r for r in map(json.loads, (tmp_path / "trl_out.jsonl").read_text().splitlines())}
    conv = out[json.dumps([{"role": "user", "content": "2+2?"}])]
    assert conv["chosen"] == [{"role": "assistant", "content": "4"}]
    assert conv["rejected"] == [{"role": "assistant", "content": "5"}]
    assert out[json.dumps("Say hi")]["chosen"] == "Hi!", "plain-text pairs stay text"


def test_ultrafeedback_equal_scores_tie_and_margin_is_strength(sqlite_engine: Engine, tmp_path: Path) -> None:
    def row(q: str, good: str, bad: str, sc: float, sr: float) -> dict:
        return {
            "prompt": q,
            "prompt_id": q,
            "score_chosen": sc,
            "score_rejected": sr,
            "chosen": [{"role": "user", "content": q}, {"role": "assistant", "content": good}],
            "rejected": [{"role": "user", "content": q}, {"role": "assistant", "content": bad}],
        }

    rows = [row("Name a colour", "Blue.", "Seven.", 8.0, 3.0), row("Name a fruit", "Apple.", "Pear.", 7.0, 7.0)]
    report = run(sqlite_engine, write_jsonl(tmp_path / "uf.jsonl", rows))
    assert report.format == "ultrafeedback"
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Blue.", IMPORT.format("uf.jsonl"), "overall", 5.0),
        ("tie", IMPORT.format("uf.jsonl"), "overall", None),
    ]


def test_nectar_rank_one_is_best_and_texts_not_dicts(sqlite_engine: Engine, tmp_path: Path) -> None:
    answers = [
        {"answer": "Third best", "model": "m3", "rank": 3},
        {"answer": "Best", "model": "m1", "rank": 1},
        {"answer": "Second", "model": "m2", "rank": 2},
    ]
    row = {
        "prompt": "\n\nHuman: Rank us\n\nAssistant:",
        "answers": answers,
        "turns": 1,
        "num_responses": 3,
        "source": ["sharegpt"],
        "good_natured": True,
    }
    report = run(sqlite_engine, write_jsonl(tmp_path / "nectar.jsonl", [row]))
    assert (report.format, report.pairs_seen, report.labels_added) == ("nectar", 3, 3)
    who = IMPORT.format("nectar.jsonl")
    assert raw_verdicts(sqlite_engine, tmp_path) == sorted(
        [("Best", who, "overall", None)] * 2 + [("Second", who, "overall", None)], key=repr
    )


def test_chatbot_arena_winner_ties_judge_and_turns(sqlite_engine: Engine, tmp_path: Path) -> None:
    def conv(answer1: str, answer2: str | None = None) -> list[dict]:
        turns = [{"role": "user", "content": "Tell a joke"}, {"role": "assistant", "content": answer1}]
        if answer2:
            turns += [{"role": "user", "content": "Another"}, {"role": "assistant", "content": answer2}]
        return turns

    rows = [
        {
            "question_id": "q1",
            "model_a": "m-a",
            "model_b": "m-b",
            "winner": "model_b",
            "judge": "arena_user_1",
            "conversation_a": conv("Knock knock", "Why?"),
            "conversation_b": conv("A pun", "Another pun"),
            "turn": 2,
        },
        {
            "question_id": "q2",
            "model_a": "m-a",
            "model_b": "m-c",
            "winner": "tie (bothbad)",
            "judge": "arena_user_2",
            "conversation_a": conv("Meh"),
            "conversation_b": conv("Bleh"),
            "turn": 1,
        },
        {
            "question_id": "q3",
            "model_a": "m-c",
            "model_b": "m-b",
            "winner": "model_a",
            "judge": "arena_user_1",
            "conversation_a": conv("Best joke"),
            "conversation_b": conv("Worst joke"),
            "turn": 1,
        },
    ]
    report = run(sqlite_engine, write_jsonl(tmp_path / "arena.jsonl", rows))
    assert report.format == "chatbot-arena"
    assert raw_verdicts(sqlite_engine, tmp_path) == sorted(
        [
            ("Another pun", "arena_user_1", "overall", None),
            ("tie", "arena_user_2", "overall", None),
            ("Best joke", "arena_user_1", "overall", None),
        ],
        key=repr,
    )
    from prefloop.data.export import export_labels

    export_labels(sqlite_engine, str(tmp_path / "out.jsonl"))
    multi = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    two_turns = next(r for r in multi if len(r["chosen"]) > 1)
    assert [m["role"] for m in two_turns["chosen"]] == ["assistant", "user", "assistant"], "roles kept"


def test_arena_55k_onehot_and_json_encoded_turns(sqlite_engine: Engine, tmp_path: Path) -> None:
    def row(i: int, a: str, b: str, flags: tuple[int, int, int]) -> dict:
        return {
            "id": i,
            "model_a": "x",
            "model_b": "y",
            "prompt": json.dumps([f"Question {i}"]),
            "response_a": json.dumps([a]),
            "response_b": json.dumps([b]),
            "winner_model_a": flags[0],
            "winner_model_b": flags[1],
            "winner_tie": flags[2],
        }

    rows = [
        row(1, "A wins", "B loses", (1, 0, 0)),
        row(2, "A loses", "B wins", (0, 1, 0)),
        row(3, "same-ish", "other", (0, 0, 1)),
    ]
    path = tmp_path / "train.csv"
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = run(sqlite_engine, path)
    assert (report.format, report.labels_added) == ("arena-55k", 3)
    who = IMPORT.format("train.csv")
    assert [v[0] for v in raw_verdicts(sqlite_engine, tmp_path)] == ["A wins", "B wins", "tie"]
    assert {v[1] for v in raw_verdicts(sqlite_engine, tmp_path)} == {who}


def test_shp_labels_one_means_a(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "post_id": "p1",
            "domain": "askscience_train",
            "history": "Why is the sky blue?",
            "c_root_id_A": "ca",
            "c_root_id_B": "cb",
            "human_ref_A": "Rayleigh scattering.",
            "human_ref_B": "Because.",
            "labels": 1,
            "score_A": 40,
            "score_B": 10,
            "score_ratio": 4.0,
        },
        {
            "post_id": "p2",
            "domain": "askscience_train",
            "history": "Why is grass green?",
            "c_root_id_A": "cc",
            "c_root_id_B": "cd",
            "human_ref_A": "Magic.",
            "human_ref_B": "Chlorophyll.",
            "labels": 0,
            "score_A": 3,
            "score_B": 9,
            "score_ratio": 3.0,
        },
    ]
    assert run(sqlite_engine, write_jsonl(tmp_path / "shp.jsonl", rows)).format == "shp"
    who = IMPORT.format("shp.jsonl")
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Chlorophyll.", who, "overall", 3.0),
        ("Rayleigh scattering.", who, "overall", 4.0),
    ]


def test_helpsteer2_sign_is_winner_and_statement_is_rationale(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "split": "train",
            "prompt": f"q{i}",
            "response_1": f"one {i}",
            "response_2": f"two {i}",
            "preference_strength": s,
            "preference_statement": f"because {i}",
            "preference_elaboration": "details",
        }
        for i, s in enumerate((-3, 2, 0))
    ]
    report = run(sqlite_engine, write_jsonl(tmp_path / "hs2.jsonl", rows))
    assert report.format == "helpsteer2"
    who = IMPORT.format("hs2.jsonl")
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("one 0", who, "overall", 3.0),
        ("tie", who, "overall", None),
        ("two 1", who, "overall", 2.0),
    ]
    out = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert {r["rationale"] for r in out} == {f"because {i}\n\ndetails" for i in range(3)}


def test_helpsteer3_per_annotator_preferences(sqlite_engine: Engine, tmp_path: Path) -> None:
    row = {
        "domain": "general",
        "language": "english",
        "context": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Tell me a fact"},
        ],
        "response1": "Water is wet.",
        "response2": "The moon is cheese.",
        "overall_preference": -2,
        "individual_preference": [
            {"score": -3, "reasoning": "1 is true"},
            {"score": -1, "reasoning": "1 ok"},
            {"score": 0, "reasoning": "both fine"},
        ],
    }
    assert run(sqlite_engine, write_jsonl(tmp_path / "hs3.jsonl", [row])).format == "helpsteer3"
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Water is wet.", "helpsteer3:annotator1", "overall", 3.0),
        ("Water is wet.", "helpsteer3:annotator2", "overall", 1.0),
        ("tie", "helpsteer3:annotator3", "overall", None),
    ]


def test_pku_saferlhf_two_dimensions_from_one_row(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "prompt": "How do I pick a lock?",
            "response_0": "Detailed steps...",
            "response_1": "I can't help.",
            "is_response_0_safe": False,
            "is_response_1_safe": True,
            "better_response_id": 0,
            "safer_response_id": 1,
        }
    ]
    assert run(sqlite_engine, write_jsonl(tmp_path / "pku.jsonl", rows)).format == "pku-saferlhf"
    who = IMPORT.format("pku.jsonl")
    assert raw_verdicts(sqlite_engine, tmp_path) == sorted(
        [("Detailed steps...", who, "helpful", None), ("I can't help.", who, "harmless", None)], key=repr
    )


def test_summarize_from_feedback_nested_worker_confidence(sqlite_engine: Engine, tmp_path: Path) -> None:
    def row(choice: int, worker: str, conf: int) -> dict:
        return {
            "info": {"id": "t3_x", "post": "My cat ate my homework.", "title": "Cat trouble", "subreddit": "pets"},
            "summaries": [
                {"text": "Cat ate homework.", "policy": "sup", "note": None},
                {"text": "Dog story.", "policy": "ref", "note": None},
            ],
            "choice": choice,
            "worker": worker,
            "batch": "batch3",
            "split": "train",
            "extra": {"confidence": conf},
        }

    report = run(sqlite_engine, write_jsonl(tmp_path / "cmp.jsonl", [row(0, "w1", 8), row(1, "w2", 2)]))
    assert report.format == "summarize-feedback"
    assert raw_verdicts(sqlite_engine, tmp_path) == [
        ("Cat ate homework.", "w1", "overall", 8.0),
        ("Dog story.", "w2", "overall", 2.0),
    ]


def test_pandalm_three_votes_per_pair_and_ties(engine: Engine, tmp_path: Path) -> None:
    rows = [
        {
            "idx": 0,
            "motivation_app": "x",
            "cmp_key": "m1_m2",
            "instruction": "Add 2+2",
            "input": "",
            "response1": "4",
            "response2": "5",
            "annotator1": 1,
            "annotator2": 1,
            "annotator3": 0,
        },
        {
            "idx": 1,
            "motivation_app": "x",
            "cmp_key": "m3_m2",
            "instruction": "Add 2+2",
            "input": "",
            "response1": "4",
            "response2": "5",
            "annotator1": 2,
            "annotator2": 1,
            "annotator3": 1,
        },
        {
            "idx": 2,
            "motivation_app": "x",
            "cmp_key": "m1_m3",
            "instruction": "Say yes",
            "input": "now",
            "response1": True,
            "response2": "",
            "annotator1": 1,
            "annotator2": 1,
            "annotator3": 1,
        },
    ]
    report = run(engine, write_json_array(tmp_path / "pandalm.json", rows))
    assert (report.format, report.pairs_seen, report.pairs_added, report.labels_added) == ("pandalm", 3, 2, 9)
    assert stats(engine)["annotators"] == 3
    expected = [
        ("4", "pandalm:annotator1", "overall", None),
        ("4", "pandalm:annotator2", "overall", None),
        ("tie", "pandalm:annotator3", "overall", None),
        ("5", "pandalm:annotator1", "overall", None),
        ("4", "pandalm:annotator2", "overall", None),
        ("4", "pandalm:annotator3", "overall", None),
        *[("True", f"pandalm:annotator{i}", "overall", None) for i in (1, 2, 3)],
    ]
    assert raw_verdicts(engine, tmp_path) == sorted(expected, key=repr)
