"""Tests for course.graph: the scalar autograd engine, its drawing and its MLP."""
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest

from course import gradcheck
from course.graph import MLP, Layer, Neuron, Value, draw

matplotlib.use("Agg")


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def centred_differences(f, inputs):
    """Gradient of ``f`` (Values in, a Value out) at ``inputs`` by finite differences."""
    x = np.array(inputs, dtype=np.float64)
    return gradcheck.numerical_gradient(lambda: f(*[Value(v) for v in x]).data, x)


# ---------------------------------------------------------------- the lecture notes' examples

def test_bmb3015_add_then_multiply():
    x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
    q = x + y
    f = q * z
    f.backward()
    assert f.data == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)
    assert q.grad == -4.0 and f.grad == 1.0


def test_cs549_J_value_and_gradients():
    a, b, c = Value(3.0, "a"), Value(2.0, "b"), Value(5.0, "c")
    J = 2 * (a * b + c)
    J.backward()
    assert J.data == 22.0
    assert (a.grad, b.grad, c.grad) == (4.0, 6.0, 2.0)


def test_cs549_nudging_a_by_a_tenth_agrees_with_backward():
    def steps(a_value):
        a, b, c = Value(a_value), Value(2.0), Value(5.0)
        u = a * b
        v = u + c
        return u, v, 2 * v

    (u0, v0, J0), (u1, v1, J1) = steps(3.0), steps(3.1)
    assert (u1.data, v1.data, J1.data) == pytest.approx((6.2, 11.2, 22.4))
    du_da = (u1.data - u0.data) / 0.1
    dv_du = (v1.data - v0.data) / (u1.data - u0.data)
    dJ_dv = (J1.data - J0.data) / (v1.data - v0.data)
    assert (du_da, dv_du, dJ_dv) == pytest.approx((2.0, 1.0, 2.0))
    a = Value(3.0)
    J = 2 * (a * 2.0 + 5.0)
    J.backward()
    assert a.grad == pytest.approx(du_da * dv_du * dJ_dv)
    assert a.grad == pytest.approx((J1.data - J0.data) / 0.1)


def test_cs549_J_matches_centred_differences():
    def J(a, b, c):
        return 2 * (a * b + c)

    inputs = (3.0, 2.0, 5.0)
    values = [Value(v) for v in inputs]
    J(*values).backward()
    numeric = centred_differences(J, inputs)
    assert [v.grad for v in values] == pytest.approx(numeric, rel=1e-8)


def cs231n_neuron(w0, x0, w1, x1, w2):
    """1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) out of *, +, *-1, exp, +1 and 1/x."""
    s = w0 * x0 + w1 * x1 + w2
    return 1 / (1 + (s * -1).exp())


def test_cs231n_sigmoid_neuron_gradients():
    names = ("w0", "x0", "w1", "x1", "w2")
    numbers = (2.0, -1.0, -3.0, -2.0, -3.0)
    w0, x0, w1, x1, w2 = (Value(n, name) for n, name in zip(numbers, names))
    f = cs231n_neuron(w0, x0, w1, x1, w2)
    f.backward()
    s = 2.0 * -1.0 + -3.0 * -2.0 - 3.0  # = 1
    ds = sigmoid(s) * (1 - sigmoid(s))  # the slide's 0.20 = (1 - 0.73) * 0.73
    assert f.data == pytest.approx(sigmoid(1.0)) and round(f.data, 2) == 0.73
    assert round(ds, 2) == 0.20
    expected = {"w0": ds * -1.0, "x0": ds * 2.0, "w1": ds * -2.0, "x1": ds * -3.0, "w2": ds}
    for v in (w0, x0, w1, x1, w2):
        assert v.grad == pytest.approx(expected[v.label], rel=1e-12)
    rounded = [round(v.grad, 2) for v in (x0, w0, x1, w1, w2)]
    assert rounded == [0.39, -0.20, -0.59, -0.39, 0.20]


def test_cs231n_neuron_with_one_sigmoid_node_gives_the_same_gradients():
    numbers = (2.0, -1.0, -3.0, -2.0, -3.0)
    long_form = [Value(n) for n in numbers]
    short_form = [Value(n) for n in numbers]
    cs231n_neuron(*long_form).backward()
    w0, x0, w1, x1, w2 = short_form
    (w0 * x0 + w1 * x1 + w2).sigmoid().backward()
    for a, b in zip(long_form, short_form):
        assert a.grad == pytest.approx(b.grad, rel=1e-12)


def test_lapenna_swapped_numbers_give_Z_minus_7_not_1():
    # The slide writes Z = (x1 w1 + x2 w2) + b = (-1 * -2 + -2 * 3) + -3 = 1.0;
    # its own arithmetic gives 2 - 6 - 3 = -7.
    x1, w1, x2, w2, b = (Value(v) for v in (-1.0, -2.0, -2.0, 3.0, -3.0))
    Z = (x1 * w1 + x2 * w2) + b
    Y = Z.sigmoid()
    assert Z.data == -7.0
    assert Z.data != 1.0
    assert Y.data == pytest.approx(sigmoid(-7.0)) and Y.data < 0.001
    # The 0.731 on the slide is sigmoid(1), the cs231n neuron's output.
    cs231n = Value(2.0) * -1.0 + Value(-3.0) * -2.0 + -3.0
    assert cs231n.data == 1.0 and round(cs231n.sigmoid().data, 3) == 0.731


# ---------------------------------------------------------------- gate patterns

def test_add_gate_distributes_the_upstream_gradient():
    x, y = Value(4.0), Value(-1.0)
    ((x + y) * 3.0).backward()
    assert x.grad == 3.0 and y.grad == 3.0


def test_mul_gate_swaps_its_inputs():
    x, y = Value(3.0), Value(-4.0)
    ((x * y) * 2.0).backward()
    assert x.grad == 2.0 * -4.0
    assert y.grad == 2.0 * 3.0


def test_copy_gate_adds_the_gradients_of_its_uses():
    x = Value(2.0)
    (x * 5.0 + x * -2.0 + x.exp()).backward()
    assert x.grad == pytest.approx(5.0 - 2.0 + math.exp(2.0), rel=1e-15)


def test_max_gate_routes_the_gradient_to_the_larger_input():
    x, y = Value(4.0), Value(1.0)
    (x.max(y) * 2.0).backward()
    assert (x.grad, y.grad) == (2.0, 0.0)
    x, y = Value(-4.0), Value(1.0)
    (x.max(y) * 2.0).backward()
    assert (x.grad, y.grad) == (0.0, 2.0)


def test_max_with_a_plain_number_and_ties():
    x = Value(-3.0)
    out = x.max(0.0)
    out.backward()
    assert out.data == 0.0 and x.grad == 0.0
    a, b = Value(1.0), Value(1.0)
    a.max(b).backward()
    assert (a.grad, b.grad) == (1.0, 0.0)


# ---------------------------------------------------------------- graph shape

def test_node_reused_b_equals_a_plus_a():
    a = Value(3.0)
    b = a + a
    c = b * b
    c.backward()
    assert c.data == 36.0
    assert b.grad == 2 * b.data == 12.0
    assert a.grad == 24.0  # c = 4 a^2, dc/da = 8 a


def test_ten_thousand_node_chain_needs_no_recursion():
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        x = Value(0.5)
        y = x
        for _ in range(10_000):
            y = y * 1.0001
        y.backward()
    finally:
        sys.setrecursionlimit(old_limit)
    assert len(y.topological_order()) == 20_001  # 10,000 products and their constants
    assert y.data == pytest.approx(0.5 * 1.0001 ** 10_000, rel=1e-9)
    assert x.grad == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_topological_order_lists_each_node_after_its_parents():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = (c + a) * (c + b)
    order = d.topological_order()
    assert len(order) == len(set(map(id, order))) == 6
    position = {id(v): i for i, v in enumerate(order)}
    for v in order:
        for p in v._parents:
            assert position[id(p)] < position[id(v)]
    assert order[-1] is d


def test_backward_twice_doubles_every_gradient_exactly():
    a, b, c = Value(0.3), Value(-1.2), Value(2.0)
    f = ((a * b + a).tanh() * c + b.exp()) / c
    f.backward()
    nodes = f.topological_order()
    first = [v.grad for v in nodes]
    f.backward()
    assert [v.grad for v in nodes] == [2 * g for g in first]
    for v in nodes:
        v.grad = 0.0
    f.backward()
    assert [v.grad for v in nodes] == first


# ---------------------------------------------------------------- every operation

CASES = {
    "add": (lambda a, b: a + b, (1.5, -0.7)),
    "number + value": (lambda a: 2.0 + a, (1.5,)),
    "sub": (lambda a, b: a - b, (1.5, -0.7)),
    "number - value": (lambda a: 2.0 - a, (0.3,)),
    "mul": (lambda a, b: a * b, (1.5, -0.7)),
    "number * value": (lambda a: -3.0 * a, (0.3,)),
    "div": (lambda a, b: a / b, (1.5, -0.7)),
    "number / value": (lambda a: 2.0 / a, (0.8,)),
    "pow int": (lambda a: a ** 3, (-1.3,)),
    "pow negative": (lambda a: a ** -1.5, (0.9,)),
    "pow half": (lambda a: a ** 0.5, (2.0,)),
    "number ** value": (lambda a: 2.0 ** a, (0.7,)),
    "neg": (lambda a: -a, (0.7,)),
    "exp": (lambda a: a.exp(), (0.4,)),
    "log": (lambda a: a.log(), (0.8,)),
    "tanh": (lambda a: a.tanh(), (0.4,)),
    "sigmoid": (lambda a: a.sigmoid(), (-1.2,)),
    "sigmoid far left": (lambda a: a.sigmoid(), (-30.0,)),
    "relu positive": (lambda a: a.relu(), (0.5,)),
    "relu negative": (lambda a: a.relu(), (-0.5,)),
    "max first": (lambda a, b: a.max(b), (2.0, 1.0)),
    "max second": (lambda a, b: a.max(b), (1.0, 2.0)),
    "composite": (lambda a, b: (a * b + a.exp()).tanh() / (1 + b ** 2), (0.3, -0.8)),
}


@pytest.mark.parametrize("name", CASES)
def test_every_operation_matches_centred_differences(name):
    f, inputs = CASES[name]
    values = [Value(v) for v in inputs]
    out = f(*values)
    out.backward()
    analytic = np.array([v.grad for v in values])
    numeric = centred_differences(f, inputs)
    assert gradcheck.rel_error(analytic, numeric) < 1e-7, (analytic, numeric)


@pytest.mark.parametrize("name", CASES)
def test_every_operation_matches_torch_autograd(name):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional second reference")
    f, inputs = CASES[name]
    values = [Value(v) for v in inputs]
    out = f(*values)
    out.backward()
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in inputs]
    reference = f(*tensors)
    reference.backward()
    assert out.data == pytest.approx(reference.item(), rel=1e-12, abs=1e-300)
    for v, t in zip(values, tensors):
        assert v.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-300)


def test_numpy_scalar_on_the_left_gives_a_value():
    x = Value(3.0)
    out = np.float64(2.0) * x
    assert isinstance(out, Value) and out.data == 6.0
    out.backward()
    assert x.grad == 2.0


# ---------------------------------------------------------------- errors

def test_log_of_a_non_positive_number_names_the_value():
    with pytest.raises(ValueError, match="-2.5"):
        Value(-2.5).log()
    with pytest.raises(ValueError, match="positive"):
        Value(0.0).log()


def test_power_needs_a_plain_number_exponent():
    with pytest.raises(TypeError, match="exponent"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(ValueError, match="real number"):
        Value(-4.0) ** 0.5
    with pytest.raises(ValueError, match="positive"):
        (-2.0) ** Value(0.5)


def test_non_numbers_are_rejected():
    with pytest.raises(TypeError, match="real number"):
        Value("3")
    with pytest.raises(TypeError):
        Value(1.0) + "a"
    with pytest.raises(TypeError):
        "a" * Value(1.0)
    with pytest.raises(TypeError, match="real number"):
        Value(1.0).max("a")


# ---------------------------------------------------------------- drawing

def svg_ids(svg_text):
    return [el.get("id") for el in ET.fromstring(svg_text).iter() if el.get("id")]


def test_draw_has_one_box_per_value_and_one_circle_per_operation(tmp_path):
    w0, x0, w1, x1, w2 = (Value(n) for n in (2.0, -1.0, -3.0, -2.0, -3.0))
    f = cs231n_neuron(w0, x0, w1, x1, w2)
    f.backward()
    nodes = f.topological_order()
    n_ops = sum(1 for v in nodes if v._parents)
    assert n_ops == 8  # two *, two +, *-1, exp, +1 and 1/x
    assert len(nodes) == 16  # five inputs, three constants (-1, 1, 1), eight results
    ids = svg_ids(draw(f)._repr_svg_())
    assert sum(i.startswith("value-") for i in ids) == len(nodes)
    assert sum(i.startswith("op-") for i in ids) == n_ops
    draw(f).save(tmp_path / "neuron.svg")
    saved = svg_ids((tmp_path / "neuron.svg").read_text())
    assert sum(i.startswith("op-") for i in saved) == n_ops


def test_draw_shows_label_data_grad_and_operation():
    x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
    f = (x + y) * z
    f.backward()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # keep text as text
        svg = draw(f)._repr_svg_()
    texts = [el.text for el in ET.fromstring(svg).iter() if el.tag.endswith("text")]
    assert texts == ["x", "data -2", "grad -4", "y", "data 5", "grad -4",
                     "data 3", "grad -4", "+", "z", "data -4", "grad 3",
                     "data -12", "grad 1", "*"]
    ids = svg_ids(svg)
    assert sorted(i for i in ids if i.startswith(("value-", "op-"))) == sorted(
        ["value-0", "value-1", "value-2", "value-3", "value-4", "op-2", "op-4"])


def test_draw_lays_the_graph_out_left_to_right_by_depth():
    x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
    q = x + y
    f = q * z
    order = f.topological_order()
    patches = {p.get_gid(): p for p in draw(f).figure.axes[0].patches}

    def centre_x(gid):
        box = patches[gid].get_extents()
        return (box.x0 + box.x1) / 2

    index = {id(v): i for i, v in enumerate(order)}
    columns = [centre_x(f"value-{index[id(x)]}"), centre_x(f"op-{index[id(q)]}"),
               centre_x(f"value-{index[id(q)]}"), centre_x(f"op-{index[id(f)]}"),
               centre_x(f"value-{index[id(f)]}")]
    assert columns == sorted(columns) and len(set(columns)) == 5
    # an input sits just left of the operation that first uses it
    assert centre_x(f"value-{index[id(z)]}") == centre_x(f"value-{index[id(q)]}")


def test_draw_saves_a_png(tmp_path):
    a = Value(3.0, "a")
    b = a + a
    (b * b).backward()
    path = tmp_path / "reuse.png"
    draw(b * b).save(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, course, course.graph; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- neuron, layer, MLP

def test_parameter_counts():
    assert len(Neuron(3, rng=0).parameters()) == 4
    assert len(Layer(3, 2, rng=0).parameters()) == 8
    assert len(MLP([2, 4, 1], rng=0).parameters()) == 2 * 4 + 4 + 4 * 1 + 1


def test_same_seed_same_weights_and_generator_accepted():
    first = [p.data for p in MLP([2, 3, 1], rng=7).parameters()]
    second = [p.data for p in MLP([2, 3, 1], rng=np.random.default_rng(7)).parameters()]
    other = [p.data for p in MLP([2, 3, 1], rng=8).parameters()]
    assert first == second
    assert first != other


def test_neuron_computes_activation_of_weighted_sum():
    n = Neuron(2, activation="sigmoid", rng=0)
    out = n([1.0, -2.0])
    expected = sigmoid(n.w[0].data * 1.0 + n.w[1].data * -2.0 + n.b.data)
    assert out.data == pytest.approx(expected, rel=1e-15)
    assert MLP([2, 3, 2], rng=0)([1.0, 0.5]).__class__ is list
    with pytest.raises(ValueError, match="2 inputs, got 3"):
        n([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="activation"):
        Neuron(2, activation="softplus")
    with pytest.raises(ValueError, match="n_in, n_out"):
        MLP([2])


def test_zero_grad_resets_every_parameter():
    model = MLP([2, 3, 1], rng=0)
    model([1.0, -1.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def mlp_loss(model, X, Y):
    """Half the summed squared error of ``model`` on inputs ``X`` and targets ``Y`` (a Value)."""
    total = Value(0.0)
    for x, y in zip(X, Y):
        out = model(x)
        outs = out if isinstance(out, list) else [out]
        total = total + sum((o - t) ** 2 for o, t in zip(outs, y))
    return 0.5 * total


@pytest.mark.parametrize("sizes, activation, out_activation", [
    ([3, 4, 3, 2], "tanh", "linear"),
    ([3, 5, 1], "sigmoid", "linear"),
    ([2, 4, 4, 2], "tanh", "sigmoid"),
], ids=["3-4-3-2-tanh-linear", "3-5-1-sigmoid-linear", "2-4-4-2-tanh-sigmoid"])
def test_mlp_parameter_gradients_match_centred_differences(sizes, activation, out_activation):
    """backward() gives every MLP parameter d(loss)/d(p.data) as centred differences do."""
    rng = np.random.default_rng(3)
    model = MLP(sizes, activation=activation, out_activation=out_activation, rng=1)
    for p in model.parameters():  # biases start at 0: make them generic too
        p.data = float(rng.uniform(-1, 1))
    X = rng.standard_normal((4, sizes[0])).tolist()
    Y = rng.standard_normal((4, sizes[-1])).tolist()
    loss = mlp_loss(model, X, Y)
    model.zero_grad()
    loss.backward()
    params = model.parameters()
    assert len(params) == sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    analytic = np.array([p.grad for p in params])
    numeric = np.empty(len(params))
    h = 1e-5
    for i, p in enumerate(params):
        old = p.data
        p.data = old + h
        plus = mlp_loss(model, X, Y).data
        p.data = old - h
        minus = mlp_loss(model, X, Y).data
        p.data = old
        numeric[i] = (plus - minus) / (2 * h)
    assert mlp_loss(model, X, Y).data == loss.data  # every parameter was restored
    assert np.all(analytic != 0.0)
    assert gradcheck.rel_error(analytic, numeric) < 1e-8
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_mlp_learns_xor():
    X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    y = [0.0, 1.0, 1.0, 0.0]
    model = MLP([2, 4, 1], activation="tanh", out_activation="sigmoid", rng=0)
    losses = []
    for _ in range(300):
        loss = sum((model(x) - target) ** 2 for x, target in zip(X, y)) * 0.5
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 1.0 * p.grad
        losses.append(loss.data)
    y_hat = [model(x).data for x in X]
    assert [float(p > 0.5) for p in y_hat] == y
    assert losses[-1] < 0.01 < losses[0]


def test_svg_is_the_same_every_time():
    import matplotlib

    matplotlib.use("Agg")
    x, y = Value(-0.0, "x"), Value(2.0, "y")
    f = x * y
    f.backward()
    first, second = draw(f)._repr_svg_(), draw(f)._repr_svg_()
    assert first == second
    assert "data -0" not in first
