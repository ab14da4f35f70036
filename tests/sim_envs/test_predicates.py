import numpy as np
import pytest

from corrigible.errors import ParseError, UnknownNameError, UnknownObjectError
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout
from corrigible.sim_envs.locations import location_xy
from corrigible.sim_envs.predicates import WorldState, parse_predicate

REQ = [ObjectRequest(kind="block", color=c) for c in ("red", "green", "blue")] + [
    ObjectRequest(kind="bowl", color="yellow")
]


@pytest.fixture
def scene():
    return sample_layout(0, LayoutConfig(objects=REQ))


def state(scene, **positions):
    pos = {o.name: np.array(o.pos) for o in scene.objects if not o.fixed}
    pos.update({k.replace("_", " "): np.array(v) for k, v in positions.items()})
    return WorldState(scene=scene, positions=pos, articulations={"drawer": 0.0})


def holds(text, scene, st):
    return parse_predicate(text, scene).evaluate(st)[0]


def test_in_bowl(scene):
    bowl = np.array(scene.object("yellow bowl").pos)
    assert holds(
        "in(red block, yellow bowl)", scene, state(scene, red_block=bowl + [0.01, 0, 0.03])
    )
    assert not holds(
        "in(red block, yellow bowl)", scene, state(scene, red_block=bowl + [0.12, 0, 0.02])
    )


def test_stacked_and_on(scene):
    st = state(
        scene, red_block=[0.5, 0, 0.02], green_block=[0.502, 0, 0.06], blue_block=[0.5, 0.001, 0.10]
    )
    assert holds("stacked(all blocks)", scene, st)
    assert holds("on(green block, red block)", scene, st)
    st2 = state(
        scene, red_block=[0.5, 0, 0.02], green_block=[0.56, 0, 0.02], blue_block=[0.5, 0.1, 0.02]
    )
    assert not holds("stacked(all blocks)", scene, st2)


def test_at_location_and_line(scene):
    corner = location_xy("top left corner")
    assert holds("at(red block, top-left corner)", scene, state(scene, red_block=[*corner, 0.02]))
    st = state(
        scene,
        red_block=[0.5, -0.1, 0.02],
        green_block=[0.51, 0.0, 0.02],
        blue_block=[0.5, 0.1, 0.02],
    )
    assert holds("line(all blocks, horizontal)", scene, st)
    assert not holds("line(all blocks, vertical)", scene, st)


def test_drawer_open_closed_and_conjunction(scene):
    bowl = np.array(scene.object("yellow bowl").pos)
    st = state(scene)
    assert holds("closed(drawer)", scene, st)
    assert not holds("closed(drawer) and in(red block, yellow bowl)", scene, st)
    st_in = state(scene, red_block=bowl + [0, 0, 0.03])
    assert holds("closed(drawer) and in(red block, yellow bowl)", scene, st_in)
    st.articulations["drawer"] = 0.15
    assert holds("open(drawer)", scene, st)
    assert not holds("closed(drawer)", scene, st)


def test_errors_name_what_is_wrong(scene):
    with pytest.raises(UnknownObjectError, match="purple block"):
        parse_predicate("in(purple block, yellow bowl)", scene)
    with pytest.raises(UnknownNameError, match="inside"):
        parse_predicate("inside(red block, yellow bowl)", scene)
    with pytest.raises(ParseError):
        parse_predicate("red block in bowl", scene)
    with pytest.raises(ParseError, match="2 argument"):
        parse_predicate("in(red block)", scene)


def test_between_takes_objects_and_named_locations(scene):
    yellow = np.array(scene.object("yellow bowl").pos)
    green = np.array(scene.object("green block").pos)
    mid = (yellow + green) / 2
    assert holds("between(red block, yellow bowl, green block)", scene, state(scene, red_block=mid))
    off = mid + [0.05, 0.0, 0.0]
    assert not holds(
        "between(red block, yellow bowl, green block)", scene, state(scene, red_block=off)
    )
    middle = np.append(location_xy("middle"), 0.02)
    to_middle = (green + middle) / 2
    assert holds(
        "between(red block, green block, middle)", scene, state(scene, red_block=to_middle)
    )


@pytest.mark.parametrize(
    ("form", "points", "ok"),
    [
        ("circle", [(0.5, 0.1), (0.6, 0.0), (0.5, -0.1), (0.4, 0.0)], True),
        ("circle", [(0.5, 0.1), (0.65, 0.0), (0.5, -0.1), (0.4, 0.0)], False),
        ("square", [(0.45, 0.05), (0.55, 0.05), (0.55, -0.05), (0.45, -0.05)], True),
        ("square", [(0.45, 0.05), (0.60, 0.05), (0.60, -0.05), (0.45, -0.05)], False),
        ("triangle", [(0.6, 0.0), (0.45, 0.1), (0.45, -0.1)], True),
        ("triangle", [(0.6, 0.0), (0.45, 0.1), (0.45, -0.1), (0.5, 0.0)], False),  # one inside
        ("triangle", [(0.6, 0.0), (0.45, 0.1), (0.45, -0.1), (0.45, 0.0)], True),  # on a side
        ("circle", [(0.5, 0.0), (0.52, 0.0), (0.4, 0.1)], False),  # two touching
    ],
)
def test_shapes_are_judged_from_the_final_centres(form, points, ok):
    req = [ObjectRequest(kind="block", color=c) for c in ("red", "green", "blue", "cyan")]
    sc = sample_layout(0, LayoutConfig(objects=req[: len(points)]))
    names = [o.name for o in sc.objects if o.kind == "block"]
    st = state(
        sc, **{n.replace(" ", "_"): [x, y, 0.02] for n, (x, y) in zip(names, points, strict=True)}
    )
    assert holds(f"shape(all blocks, {form})", sc, st) is ok
    with pytest.raises(ParseError, match="circle, triangle or square"):
        holds("shape(all blocks, hexagon)", sc, st)


def test_not_in_is_the_negation_of_in(scene):
    bowl = np.array(scene.object("yellow bowl").pos)
    inside = state(scene, red_block=bowl + [0.0, 0.0, 0.03])
    assert not holds("not_in(red block, yellow bowl)", scene, inside)
    assert holds("not_in(green block, yellow bowl)", scene, inside)
