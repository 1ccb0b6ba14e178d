"""QTI 2.1 content packages, and the zip limits every package passes first."""

from __future__ import annotations

import io
import zipfile

import pytest

from rooms.errors import Invalid, RoomsError, TooLarge
from rooms.interchange import SafeZip, ZipLimits, import_questions
from tests.support.interchange_files import QTI_EXPECTED, qti_package, traversal_zip, zip_bomb


def test_every_item_is_reported() -> None:
    result = import_questions("qti", qti_package())
    assert [(item.name, item.status, item.kind) for item in result.items] == QTI_EXPECTED
    assert all(item.notes for item in result.items if item.status != "imported")
    assert result.title == "QTI sample"
    assert any("test.xml" in note for note in result.notes)
    assert any("QTI 1.2 is not supported" in note for note in result.notes)


def test_keys_become_ours() -> None:
    q = {q.id: q for q in import_questions("qti", qti_package()).questions}
    assert q["Capital"].text == "Capital of France?" and q["Capital"].correct == (1,)
    assert q["Capital"].points == 2
    assert q["Primes"].text == "Which are prime?" and q["Primes"].scoring == "partial"
    assert q["Vowels"].correct == (0, 1) and q["Vowels"].scoring == "all_or_nothing"
    assert q["River"].text == "Paris lies on the _____." and q["River"].accepted == ("Seine", "La Seine")
    assert (q["Pi"].answer, q["Pi"].tolerance) == (3.14, 0.01)
    assert q["Essay"].text == "Explain."


def test_zip_bomb_is_refused_before_inflating() -> None:
    bomb = zip_bomb(200)
    assert len(bomb) < 1 << 20  # 200 MB of zeros in well under 1 MB
    with pytest.raises(RoomsError) as caught:
        import_questions("qti", bomb)
    assert caught.value.code in ("zip_too_large", "zip_bomb")


def test_a_lying_header_is_refused_when_read() -> None:
    # The central directory claims 1000 bytes for 900 KB of zeros: the header checks pass, the
    # read stops at the claimed size and the archive is refused, never inflated further.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.xml", b"\0" * (900 << 10))
    data = bytearray(buffer.getvalue())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1000).to_bytes(4, "little")
    package = SafeZip(bytes(data))
    assert package.names() == ["a.xml"]
    with pytest.raises(Invalid) as caught:
        package.read("a.xml")
    assert caught.value.code == "zip_invalid"


def test_ratio_is_checked_from_the_directory() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.xml", b"\0" * (900 << 10))
    with pytest.raises(Invalid) as caught:
        SafeZip(buffer.getvalue(), ZipLimits(max_file_bytes=1 << 20, max_ratio=100))
    assert caught.value.code == "zip_bomb"


@pytest.mark.parametrize(
    ("name", "symlink"),
    [
        ("../../etc/evil.xml", False),
        ("/etc/evil.xml", False),
        ("items\\..\\..\\evil.xml", False),
        ("C:/evil.xml", False),
        ("items/link.xml", True),
    ],
)
def test_unsafe_paths_are_refused(name: str, symlink: bool) -> None:
    with pytest.raises(Invalid) as caught:
        import_questions("qti", traversal_zip(name, symlink=symlink))
    assert caught.value.code == "unsafe_path"


def test_too_many_files() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(30):
            archive.writestr(f"f{i}.xml", "<x/>")
    with pytest.raises(TooLarge) as caught:
        SafeZip(buffer.getvalue(), ZipLimits(max_files=20))
    assert caught.value.code == "zip_too_many_files"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"PK\x03\x04 not really a zip", "zip_invalid"),
        (b"plain text", "zip_invalid"),
    ],
)
def test_not_a_package(data: bytes, code: str) -> None:
    with pytest.raises(Invalid) as caught:
        import_questions("qti", data)
    assert caught.value.code == code


def test_package_without_manifest() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("item.xml", "<assessmentItem/>")
    with pytest.raises(Invalid) as caught:
        import_questions("qti", buffer.getvalue())
    assert caught.value.code == "not_qti_package"
