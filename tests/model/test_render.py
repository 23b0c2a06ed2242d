from typing import Any

import pytest

from prefloop.model import ModelConfig
from prefloop.model.render import encode, render, split_turns


@pytest.fixture(scope="module")
def tok() -> Any:
    from prefloop.model.backbone import load_tokenizer

    return load_tokenizer(ModelConfig())


def test_truncation_keeps_response_and_cuts_prompt_from_left(tok: Any) -> None:
    prompt = " ".join(f"word{i}" for i in range(300))
    r = render(prompt, "the final answer is yes", "plain")
    [enc] = encode(tok, [r], max_length=32, template="plain")
    assert len(enc["input_ids"]) == 32
    text = tok.decode(enc["input_ids"])
    assert text.rstrip().endswith("the final answer is yes [SEP]")
    assert "word299" in text and "word0 " not in text  # the prompt's END survives
    short = encode(tok, [render("hi", "yes", "plain")], max_length=32, template="plain")[0]
    assert tok.decode(short["input_ids"]) == "[CLS] hi [SEP] yes [SEP]"


def test_response_longer_than_budget_keeps_its_start(tok: Any) -> None:
    response = " ".join(f"tok{i}" for i in range(200))
    [enc] = encode(tok, [render("prompt", response, "plain")], max_length=16, template="plain")
    assert len(enc["input_ids"]) == 16
    assert tok.decode(enc["input_ids"]).startswith("[CLS] tok0")


def test_identical_inputs_share_a_key() -> None:
    assert render("p", "r", "plain").key == render("p", "r", "plain").key
    assert render("p", "r", "plain").key != render("p ", "r", "plain").key


def test_hh_turns_become_messages_and_chat_template_split() -> None:
    prompt = "\n\nHuman: hi there\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:"
    assert split_turns(prompt) == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
    ]

    class ChatTok:
        chat_template = "x"

        def apply_chat_template(self, messages: list, tokenize: bool, add_generation_prompt: bool = False) -> str:
            body = "".join(f"<{m['role']}>{m['content']}</s>" for m in messages)
            return body + ("<assistant>" if add_generation_prompt else "")

    r = render(prompt, " fine, thanks", "chat", ChatTok())
    assert r.context.endswith("<user>how are you?</s><assistant>")
    assert r.response == "fine, thanks</s>"
