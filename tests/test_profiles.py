import pytest

from scoring_lab.profiles import PROFILE_NAMES, ProfileError, load_profile


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_named_profile_loads(name):
    p = load_profile(name)
    assert p.name == name
    assert p.data.source == "synthetic"


def test_smoke_is_small_and_default_is_full_size():
    assert load_profile("smoke").data.scale < 0.1
    assert load_profile("default").data.scale == 1.0


def test_unknown_profile_names_the_choices():
    with pytest.raises(ProfileError, match=r"unknown profile 'fast'.*smoke, default, paper"):
        load_profile("fast")


def test_profile_from_a_yaml_path_and_overrides(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\ndata:\n  scale: 0.5\n  difficulty: 0.2\n")
    p = load_profile(f, difficulty=0.9)
    assert (p.name, p.data.scale, p.data.difficulty) == ("mine", 0.5, 0.9)


@pytest.mark.parametrize("text, match", [
    ("data:\n  scael: 0.5\n", r"unknown key\(s\) \['scael'\]"),
    ("data:\n  scale: 2\n", r"scale must be in \(0, 1\]"),
    ("data:\n  source: web\n", r"source must be one of"),
    ("trian:\n  epochs: 3\n", r"unknown section\(s\) \['trian'\]"),
])
def test_bad_profile_file_says_what_is_wrong(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ProfileError, match=match):
        load_profile(f)


def test_missing_profile_file(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.yaml")
