"""Image reference parsing matches Docker's (distribution/reference)."""
import pytest

from dockyard.errors import InvalidParameter
from dockyard.images.reference import InvalidReference, parse_normalized, repo_tag

H64 = "a" * 64


@pytest.mark.parametrize("text, full, familiar", [
    ("bb", "docker.io/library/bb", "bb"),
    ("bb:1.0", "docker.io/library/bb:1.0", "bb:1.0"),
    ("library/bb", "docker.io/library/bb", "bb"),
    ("docker.io/library/bb:latest", "docker.io/library/bb:latest", "bb:latest"),
    ("index.docker.io/bb", "docker.io/library/bb", "bb"),
    ("user/app", "docker.io/user/app", "user/app"),
    ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b"),
    ("localhost/foo", "localhost/foo", "localhost/foo"),
    ("localhost:5000/a/b:c", "localhost:5000/a/b:c", "localhost:5000/a/b:c"),
    ("my-host.example.com/x", "my-host.example.com/x", "my-host.example.com/x"),
    ("[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y"),
    ("Registry/app", "Registry/app", "Registry/app"),      # upper case first part = a host
    ("a__b.c-d", "docker.io/library/a__b.c-d", "a__b.c-d"),
    ("quay.io/x/y@sha256:" + H64, "quay.io/x/y@sha256:" + H64, "quay.io/x/y@sha256:" + H64),
    ("bb:t@sha256:" + H64, "docker.io/library/bb:t@sha256:" + H64, "bb:t@sha256:" + H64),
])
def test_normalizes_like_docker(text, full, familiar):
    ref = parse_normalized(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_default_tag_only_when_no_tag_or_digest():
    assert parse_normalized("bb").with_default_tag().familiar() == "bb:latest"
    assert parse_normalized("bb:v1").with_default_tag().familiar() == "bb:v1"
    assert parse_normalized("bb@sha256:" + H64).with_default_tag().tag is None


def test_familiar_name_drops_registry_and_library():
    assert parse_normalized("docker.io/library/bb:1").familiar_name == "bb"
    assert parse_normalized("ghcr.io/o/bb:1").familiar_name == "ghcr.io/o/bb"


@pytest.mark.parametrize("text, message", [
    ("", "invalid reference format"),
    ("bb:", "invalid reference format"),
    (":tag", "invalid reference format"),
    ("-bb", "invalid reference format"),
    ("a___b", "invalid reference format"),
    ("bb@sha256:abc", "invalid reference format"),
    ("bb:" + "t" * 129, "invalid reference format"),
    ("UPPER", "invalid reference format: repository name (library/UPPER) must be lowercase"),
    ("user/App:1", "invalid reference format: repository name (user/App) must be lowercase"),
    (H64, f"invalid repository name ({H64}), cannot specify 64-byte hexadecimal strings"),
    ("bb@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("bb@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
])
def test_invalid_references_give_dockers_messages(text, message):
    with pytest.raises(InvalidReference) as e:
        parse_normalized(text)
    assert e.value.message == message
    assert isinstance(e.value, InvalidParameter) and e.value.status == 400


def test_repo_tag_combines_like_import_and_tag():
    assert repo_tag("bb", None).familiar() == "bb:latest"
    assert repo_tag("bb:v1", None).familiar() == "bb:v1"
    assert repo_tag("bb:v1", "v2").familiar() == "bb:v2"        # explicit tag wins
    with pytest.raises(InvalidReference, match="invalid tag format"):
        repo_tag("bb", "-bad")
    with pytest.raises(InvalidReference, match="cannot import digest reference"):
        repo_tag("bb@sha256:" + H64, None)
