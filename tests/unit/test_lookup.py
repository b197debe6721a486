import pytest

from dockyard.daemon import ids, names
from dockyard.daemon.container import Container, State
from dockyard.daemon.lookup import ContainerStore
from dockyard.errors import Conflict, InvalidParameter, NoSuchContainer
from dockyard.store.db import Database


def _c(cid, name):
    return Container(id=cid, name=name, created="2026-01-01T00:00:00Z", image="sha256:" + "0" * 64,
                     image_ref="bb", config={}, host_config={})


@pytest.fixture
def store(tmp_path):
    return ContainerStore(Database(str(tmp_path / "db")))


def test_lookup_order_full_id_then_name_then_prefix(store):
    a = _c("abcd" + "1" * 60, "web")
    b = _c("abce" + "2" * 60, "db")
    store.add(a)
    store.add(b)
    assert store.get(a.id) is a
    assert store.get("web") is a
    assert store.get("/web") is a
    assert store.get("abcd") is a
    with pytest.raises(InvalidParameter, match="multiple IDs found with provided prefix: abc"):
        store.get("abc")
    with pytest.raises(NoSuchContainer, match="No such container: zzz"):
        store.get("zzz")


def test_exact_name_beats_prefix(store):
    a = _c("beef" + "1" * 60, "x1")
    b = _c("cafe" + "2" * 60, "beef")   # a name that is also a prefix of a's id
    store.add(a)
    store.add(b)
    assert store.get("beef") is b


def test_name_conflict_message_and_persistence(tmp_path):
    db = Database(str(tmp_path / "db"))
    s = ContainerStore(db)
    a = _c("a" * 64, "web")
    s.add(a)
    with pytest.raises(Conflict, match=r'The container name "/web" is already in use by container "a{64}"'):
        s.add(_c("b" * 64, "web"))
    s2 = ContainerStore(db)   # reloads from SQLite
    assert s2.get("web").id == a.id


def test_rename_and_remove(store):
    a = _c("a" * 64, "one")
    store.add(a)
    store.rename(a, "two")
    assert store.get("two") is a
    with pytest.raises(NoSuchContainer):
        store.get("one")
    store.remove(a)
    assert not store.name_taken("two")


def test_ids_short_form_never_all_digits():
    for _ in range(200):
        cid = ids.new_id()
        assert len(cid) == 64 and not cid[:12].isdigit()
        int(cid, 16)


def test_names():
    assert names.validate("/web") == "web"
    assert names.validate("a.b_c-d") == "a.b_c-d"
    for bad in ("a", "-x", "has space", "x/y", ""):
        with pytest.raises(InvalidParameter, match="Invalid container name"):
            names.validate(bad)
    g = names.generate()
    assert "_" in g and names.validate(g) == g


def test_state_machine_rejects_illegal_moves():
    st = State()
    st.transition("running")
    st.transition("exited")
    with pytest.raises(Conflict):
        State(status="removing").transition("running")
    with pytest.raises(Conflict):
        State(status="created").transition("paused")
