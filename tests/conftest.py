"""Shared test data locations and story parametrization for the HPACK tests; the check
that the tests run against an installed cno where that is asked for (CNO_TEST_INSTALLED).

The corpora are vendored in ``tests/data/`` (see its README.md) and found relative to this
file, so the tests run the same from a checkout, an unpacked sdist, or a copy of ``tests/``
beside an installed ``cno``.
"""
import json
import os
import sysconfig
from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parent / "data"
HPACK_TEST_CASE = TESTDATA / "hpack-test-case"
RAW_DATA = "raw-data"


def _stories(raw):
    """story_*.json files: raw-data's if raw, else every other directory's."""
    if not HPACK_TEST_CASE.is_dir():
        return []
    out = []
    for d in sorted(p for p in HPACK_TEST_CASE.iterdir() if p.is_dir()):
        if (d.name == RAW_DATA) == raw:
            out.extend(sorted(d.glob("story_*.json")))
    return out


ENCODED_STORIES = _stories(raw=False)
RAW_STORIES = _stories(raw=True)


def _installed_roots():
    return {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}


def pytest_configure(config):
    # tools/test.sh and cibuildwheel set CNO_TEST_INSTALLED: the tests must exercise the
    # installed cno, never a source tree that happens to be first on sys.path.
    if os.environ.get("CNO_TEST_INSTALLED"):
        import cno
        where = Path(cno.__file__).resolve()
        if not any(root in where.parents for root in _installed_roots()):
            raise pytest.UsageError(
                "CNO_TEST_INSTALLED is set, but cno was imported from %s, not from this "
                "Python's site-packages (%s)" % (where, ", ".join(map(str, _installed_roots()))))


def pytest_report_header(config):
    try:
        import cno
    except ImportError as e:
        return "cno: not importable (%s)" % e
    return "cno %s from %s" % (cno.__version__, os.path.dirname(cno.__file__))


def story_id(path):
    """'nghttp2/story_03' for .../hpack-test-case/nghttp2/story_03.json."""
    return "%s/%s" % (path.parent.name, path.stem)


def pytest_generate_tests(metafunc):
    # Parametrize per story file. An empty list (data missing) gives no tests here;
    # test_hpack_corpus.py::test_corpus_present fails in that case.
    if "encoded_story" in metafunc.fixturenames:
        metafunc.parametrize("encoded_story", ENCODED_STORIES, ids=story_id)
    if "raw_story" in metafunc.fixturenames:
        metafunc.parametrize("raw_story", RAW_STORIES, ids=story_id)


def load_story(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def testdata_dir():
    return TESTDATA


@pytest.fixture(scope="session")
def hpack_test_case_dir():
    return HPACK_TEST_CASE


@pytest.fixture
def story_loader():
    """load(path) -> the story's JSON object."""
    return load_story


# -- peers several test modules start (one per module) ----------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from aio_util import Certs
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def hypercorn_plain(tmp_path_factory):
    from aio_util import hypercorn
    with hypercorn(tmp_path_factory.mktemp("hypercorn")) as srv:
        yield srv


@pytest.fixture(scope="module")
def hypercorn_tls(tmp_path_factory, certs):
    from aio_util import hypercorn
    with hypercorn(tmp_path_factory.mktemp("hypercorn_tls"), certs) as srv:
        yield srv
