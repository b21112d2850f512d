from product_descgen.llm.types import GenerationSettings


def test_stop_strings_are_added_after_the_settings_own_and_once():
    settings = GenerationSettings(max_new_tokens=8, stop=["END", "###"])
    merged = settings.with_stop(["###", "\n\n"])
    assert merged.stop == ["END", "###", "\n\n"]
    assert settings.stop == ["END", "###"] and merged.max_new_tokens == 8  # a copy


def test_greedy_settings_key_the_same_whatever_their_seed_or_top_p():
    greedy = GenerationSettings(temperature=0.0)
    assert GenerationSettings(seed=5, top_p=0.9).cache_key() == greedy.cache_key()
    assert greedy.cache_key() == greedy.model_dump()  # the defaults' keys are unchanged
    assert GenerationSettings(max_new_tokens=9).cache_key() != greedy.cache_key()
    sampled = GenerationSettings(temperature=0.7, seed=1)
    assert sampled.cache_key() != GenerationSettings(temperature=0.7, seed=2).cache_key()
