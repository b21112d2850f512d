from product_descgen.llm.types import GenerationSettings


def test_stop_strings_are_added_after_the_settings_own_and_once():
    settings = GenerationSettings(max_new_tokens=8, stop=["END", "###"])
    merged = settings.with_stop(["###", "\n\n"])
    assert merged.stop == ["END", "###", "\n\n"]
    assert settings.stop == ["END", "###"] and merged.max_new_tokens == 8  # a copy
