"""The STDP recipes: smoke runs beat chance, Diehl & Cook resumes identically, helpers."""

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from deepspike import runner
from deepspike.errors import CheckpointError, ConfigError
from deepspike.recipes import RECIPES, Context, get_recipe
from deepspike.recipes import _stdp_common as common
from deepspike.recipes import diehl2015_stdp as dc
from deepspike.training import seed_everything

STDP_RECIPES = ("diehl2015-stdp", "kheradpisheh2018-sdnn", "mozafari2019-rstdp", "nessler2013-wta")


@pytest.mark.parametrize("recipe_id", STDP_RECIPES)
def test_recipes_are_registered_with_smoke_and_quick_settings(recipe_id):
    recipe = RECIPES[recipe_id]
    assert recipe.local_learning and {"mnist", "digits"} <= set(recipe.datasets)
    assert recipe.smoke and recipe.quick and set(recipe.smoke) <= set(recipe.defaults)


@pytest.mark.parametrize(
    ("recipe_id", "floor"),
    [
        ("diehl2015-stdp", 40.0),
        ("kheradpisheh2018-sdnn", 60.0),
        ("mozafari2019-rstdp", 30.0),
        ("nessler2013-wta", 30.0),
    ],
)
def test_a_smoke_run_beats_chance_on_digits(recipe_id, floor, tmp_path):
    record = runner.train(
        recipe_id, out=tmp_path, dataset="digits", profile="smoke", progress=False
    )
    assert record["accuracy"] > floor  # chance is 10 %
    assert record["local_learning"] and record["synops_per_sample"] > 0
    assert (tmp_path / runner.CHECKPOINT_FILE).is_file()


def context(config: dict, seed: int = 0) -> Context:
    return Context(
        config=config,
        dataset="digits",
        data_dir=None,
        seed=seed,
        generator=seed_everything(seed),
        progress=False,
    )


class Interrupted(Exception):
    pass


def small_config(**overrides) -> dict:
    recipe = get_recipe("diehl2015-stdp")
    config = recipe.config(
        {
            "n_neurons": 12,
            "epochs": 1,
            "presentation_ms": 40.0,
            "batch_size": 8,
            "weight_sum": 16.0,
            "checkpoint_every": 16,
        },
        "smoke",
    )
    config.update(overrides)
    return config


def test_diehl_cook_resumes_from_a_checkpoint_with_identical_weights(tmp_path):
    images = torch.rand(48, 64) * (torch.rand(48, 64) < 0.5)
    net = dc.network_from(small_config(), 64)
    straight, _ = dc.fit(context(small_config()), net, images)

    config = small_config(checkpoint_dir=str(tmp_path))

    def stop_after_40(done: int) -> None:
        if done >= 40:
            raise Interrupted

    with pytest.raises(Interrupted):
        dc.fit(context(config), net, images, on_batch=stop_after_40)
    assert (tmp_path / common.PROGRESS_FILE).is_file()
    resumed, stats = dc.fit(context(config), net, images)
    assert stats["resumed_at_image"] == 32  # the last checkpoint (every 16) before image 40
    assert stats["train_seconds_all_sessions"] > 0
    torch.testing.assert_close(resumed.weight, straight.weight, rtol=0, atol=0)
    torch.testing.assert_close(resumed.theta, straight.theta, rtol=0, atol=0)


def test_diehl_cook_currents_are_the_dense_product_of_input_spikes_and_weights():
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(30, 3, 20, generator=g) < 0.1).float()
    weight = torch.rand(7, 20, generator=g)
    currents = dc.synaptic_input(spikes.to_sparse().coalesce(), weight.T.contiguous())
    torch.testing.assert_close(currents, spikes @ weight.T)


@pytest.mark.parametrize(("synapse", "rule"), [("current", "pair"), ("conductance", "triplet")])
def test_diehl_cook_learning_changes_only_the_neurons_that_fired(synapse, rule):
    config = small_config(n_neurons=30, batch_size=1, min_spikes=0, synapse=synapse)
    config["presentation_ms"] = 100.0  # long enough for a conductance to reach threshold
    net = dc.network_from({**config, "stdp_rule": rule}, 64)
    g = torch.Generator().manual_seed(1)
    learner = dc.Learner(net, dc.initial_state(net, g))
    before = learner.state.weight
    counts = learner.learn(torch.rand(1, 64) * 0.9 + 0.1, g)
    fired = counts[0] > 0
    after = learner.state.weight
    assert 0 < int(fired.sum()) < net.n_neurons
    torch.testing.assert_close(after[~fired], before[~fired], rtol=0, atol=0)
    assert not torch.equal(after[fired], before[fired])
    torch.testing.assert_close(after[fired].sum(1), torch.full((int(fired.sum()),), 16.0))
    torch.testing.assert_close(learner.weight_by_input, after.T, rtol=0, atol=0)


def test_diehl_cook_triplet_rule_learns_from_repeated_spikes_only():
    """With ``stdp_rule="triplet"`` a neuron's first spike of a presentation potentiates
    nothing: the window equals the pair rule's with each post spike's potentiation scaled by
    the unit's post trace (40 ms) from before it."""
    config = small_config(stdp_rule="triplet")
    net = dc.network_from(config, 64)
    assert net.stdp == dc.stdp_rule_from(config)
    pre, post = torch.zeros(40, 1, 64), torch.zeros(40, 1, 3)
    pre[2, 0, :8] = 1.0
    post[5, 0, 0] = 1.0  # unit 0 fires once, unit 1 twice
    post[5, 0, 1] = post[9, 0, 1] = 1.0
    window = dc.stdp_window(pre, post, net.stdp)
    pair = dc.stdp_window(pre, post, dc.stdp_rule_from(small_config(stdp_rule="pair")))
    assert window.units.tolist() == pair.units.tolist() == [0, 1]
    assert window.ltp[0].abs().sum() == 0
    # pre at 2; pair: e^{-3/20} + e^{-7/20}; triplet: the second spike only, times e^{-4/40}
    scale = math.exp(-4 / 40) * math.exp(-7 / 20) / (math.exp(-3 / 20) + math.exp(-7 / 20))
    torch.testing.assert_close(window.ltp[1], pair.ltp[1] * scale)
    torch.testing.assert_close(window.ltd, pair.ltd)


def test_diehl_cook_conductance_synapses_use_the_papers_reversal_potentials():
    config = small_config(synapse="conductance", g_inhibition=17.0, min_spikes=0)
    net = dc.network_from(config, 64)
    model = net.learning_model(torch.zeros(net.n_neurons))
    coba = model.model.model
    assert (coba.e_exc, coba.e_inh, coba.tau_exc, coba.tau_inh) == (65.0, -35.0, 1.0, 2.0)
    assert model.strength == 17.0  # g_inhibition, not the current kick of ``inhibition``
    g = torch.Generator().manual_seed(1)
    learner = dc.Learner(net, dc.initial_state(net, g))
    before = learner.state.weight
    counts = learner.learn(torch.rand(4, 64) * 0.9 + 0.1, g)
    fired = counts.sum(0) > 0
    assert 0 < int(fired.sum()) < net.n_neurons
    torch.testing.assert_close(learner.state.weight[~fired], before[~fired], rtol=0, atol=0)


@pytest.mark.parametrize("rule", ["pair", "triplet"])
def test_diehl_cook_update_from_the_fired_neurons_equals_the_whole_output(rule):
    g = torch.Generator().manual_seed(3)
    pre = (torch.rand(50, 2, 30, generator=g) < 0.1).float().to_sparse().coalesce()
    post = (torch.rand(50, 2, 40, generator=g) < 0.02).float()
    post[:, :, 7] = 0.0
    stdp = dc.stdp_rule_from(small_config(stdp_rule=rule))
    whole = dc.stdp_window(pre, post, stdp)
    units, rows = dc.fired_update(pre, post, post.sum(0), stdp)
    assert 7 not in units.tolist() and len(units) > 5
    assert torch.equal(units, whole.units)
    assert torch.equal(rows, whole.ltp - whole.ltd)


def test_diehl_cook_network_defaults_are_the_recipe_defaults_at_the_papers_model_sizes():
    config = get_recipe("diehl2015-stdp").config({"n_neurons": 1600}, "full")
    assert dc.network_from(config, 784) == dc.Network(784, 1600)


@pytest.mark.parametrize(("n_neurons", "batch"), [(100, 14), (400, 3), (1600, 1), (6400, 1)])
def test_diehl_cook_evaluation_batch_keeps_a_batch_near_two_megabytes(n_neurons, batch):
    """350 steps x B x N float32 currents: 2^19 values fit 14 images at 100 neurons (14 x
    35,000 = 490,000), 3 at 400 (3 x 140,000), and never fewer than one image."""
    config = get_recipe("diehl2015-stdp").config({"n_neurons": n_neurons}, "full")
    net = dc.network_from(config, 784)
    assert net.steps == 350 and dc.eval_batch_size(config, net) == batch
    assert dc.eval_batch_size({**config, "batch_size_eval": 5}, net) == 5
    with pytest.raises(ConfigError, match="batch_size_eval=-1 must be 0"):
        dc.network_from({**config, "batch_size_eval": -1}, 784)


def test_pace_reports_the_share_the_rate_and_the_time_left():
    # 1,000 images in 20 s since 500: 50 images/s; 8,500 left take 170 s, under 3 min
    line = common.pace(1500, 10000, 500, 20.0, "image")
    assert line == "image 1,500 of 10,000 (15.0 %), 50.0 images/s, about 3 min left"
    # 4 epochs in 180 s: 45 s an epoch; 666 left take 29,970 s = 8.325 h
    line = common.pace(14, 680, 10, 180.0, "epoch")
    assert line == "epoch 14 of 680 (2.1 %), 45 s per epoch, about 8.3 h left"
    assert common.pace(5, 10, 5, 3.0, "image") == "image 5 of 10 (50.0 %)"  # nothing new yet
    assert common.pace(6, 10, 5, 3.0, "image").endswith("3 s per image, under a minute left")


def test_diehl_cook_auto_model_follows_the_network_size_and_yields_to_explicit_settings():
    recipe = get_recipe("diehl2015-stdp")
    threshold = dc.PAPER_MODEL_MIN_NEURONS
    below = recipe.config({"n_neurons": threshold - 1}, "full")
    at = recipe.config({"n_neurons": threshold}, "full")
    assert dc.model_for(below) == {"synapse": "current", "stdp_rule": "pair"}
    assert dc.model_for(at) == {"synapse": "conductance", "stdp_rule": "triplet"}
    small = dc.network_from(below, 784)
    assert small.synapse == "current" and small.inhibition == below["inhibition"]
    assert isinstance(small.stdp, dc.PairSTDP)
    mixed = {**below, "synapse": "conductance"}
    assert dc.model_for(mixed) == {"synapse": "conductance", "stdp_rule": "pair"}
    assert dc.network_from(mixed, 784).inhibition == below["g_inhibition"]


def test_diehl_cook_tau_theta_grows_with_the_network_above_1600_neurons():
    recipe = get_recipe("diehl2015-stdp")
    by_size = {
        n: dc.network_from(recipe.config({"n_neurons": n}, "full"), 784).tau_theta
        for n in (100, 1600, 3200, 6400)
    }
    # 1e7 ms up to 1,600 neurons (the paper's), then 1e7 * N / 1600
    assert by_size == {100: 1e7, 1600: 1e7, 3200: 2e7, 6400: 4e7}
    explicit = recipe.config({"n_neurons": 6400, "tau_theta": 1e7}, "full")
    assert dc.network_from(explicit, 784).tau_theta == 1e7
    with pytest.raises(ConfigError, match=r"tau_theta=-1\.0 must be positive"):
        dc.tau_theta_for({**explicit, "tau_theta": -1.0})


def test_diehl_cook_refire_interval_reaches_the_conductance_neuron_and_only_it():
    config = small_config(synapse="conductance", refire_ms=50.0)
    lif = dc.network_from(config, 64).lif()
    assert lif.t_refire == 50.0 and lif.refire_steps == 50 and lif.refractory_steps == 5
    with pytest.raises(ConfigError, match=r"refire_ms=50\.0 applies to synapse='conductance'"):
        dc.network_from({**config, "synapse": "current"}, 64)


@pytest.mark.parametrize("synapse", ["current", "conductance"])
def test_diehl_cook_theta_offset_starts_at_minus_52_mv_and_lets_a_decayed_neuron_fire_at_rest(
    synapse,
):
    """The authors' simulation starts theta at 20 mV under a threshold of -72 mV + theta: the
    same -52 mV at first, but a neuron whose theta has decayed below 7 mV fires without input."""
    config = small_config(n_neurons=4, batch_size=1, min_spikes=0, synapse=synapse)
    plain = dc.network_from(config, 64)
    offset = dc.network_from({**config, "theta_offset_mv": 20.0}, 64)
    g = torch.Generator().manual_seed(0)
    start = dc.initial_state(offset, g)
    torch.testing.assert_close(start.theta, torch.full((4,), 20.0))
    assert offset.lif(start.theta).v_th.tolist() == [plain.lif().v_th] * 4 == [13.0] * 4
    decayed = torch.tensor([0.0, 6.0, 8.0, 20.0])  # thresholds -72, -66, -64, -52 mV
    learner = dc.Learner(offset, dc.State(start.weight, decayed))
    counts = learner.learn(torch.zeros(1, 64), g)[0]
    assert (counts > 0).tolist() == [True, True, False, False]
    quiet = dc.Learner(plain, dc.State(start.weight, decayed)).learn(torch.zeros(1, 64), g)
    assert int(quiet.sum()) == 0


@pytest.mark.parametrize("synapse", ["current", "conductance"])
def test_diehl_cook_reset_sets_where_the_membrane_restarts_and_so_the_firing_rate(synapse):
    config = small_config(
        n_neurons=1,
        batch_size=1,
        min_spikes=0,
        synapse=synapse,
        presentation_ms=300.0,
        weight_sum=32.0,
    )
    counts = {}
    for reset in (-60.0, -65.0):
        net = dc.network_from({**config, "reset_mv": reset}, 64)
        assert net.lif().v_reset == reset + 65.0  # voltages are measured from rest
        g = torch.Generator().manual_seed(0)
        learner = dc.Learner(net, dc.initial_state(net, g))
        counts[reset] = int(learner.learn(torch.ones(1, 64), g).sum())  # the same input
    # 5 mV further to climb after every spike: fewer spikes under the same drive
    assert counts[-60.0] > counts[-65.0] > 10
    with pytest.raises(ConfigError, match=r"reset_mv=-52\.0 must be below the threshold"):
        dc.network_from({**config, "reset_mv": -52.0}, 64)


def test_diehl_cook_unknown_synapse_is_refused_by_name():
    with pytest.raises(ConfigError, match="synapse='alpha'"):
        dc.network_from(small_config(synapse="alpha"), 64)


def test_diehl_cook_unknown_stdp_rule_is_refused_by_name():
    with pytest.raises(ConfigError, match="stdp_rule='hebb'"):
        dc.network_from(small_config(stdp_rule="hebb"), 64)


def test_diehl_cook_run_extended_by_an_epoch_equals_a_longer_run(tmp_path):
    images = torch.rand(24, 64) * (torch.rand(24, 64) < 0.5)
    net = dc.network_from(small_config(), 64)
    straight, _ = dc.fit(context(small_config(epochs=2)), net, images)
    folder = str(tmp_path)
    dc.fit(context(small_config(checkpoint_dir=folder, epochs=1)), net, images)
    extended, stats = dc.fit(context(small_config(checkpoint_dir=folder, epochs=2)), net, images)
    assert stats["resumed_at_image"] == 24
    torch.testing.assert_close(extended.weight, straight.weight, rtol=0, atol=0)
    torch.testing.assert_close(extended.theta, straight.theta, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="past the 24 images that epochs sets"):
        dc.fit(context(small_config(checkpoint_dir=folder, epochs=1)), net, images)


def test_progress_survives_changes_to_evaluation_and_length_only(tmp_path):
    config = small_config(checkpoint_dir=str(tmp_path), n_label=100, epochs=1)
    common.save_progress(context(config), 8, {"w": torch.ones(2)}, {"note": 1})
    later = small_config(
        checkpoint_dir=str(tmp_path), n_label=0, n_test=5, batch_size_eval=3, epochs=4
    )
    saved = common.load_progress(context(later))
    assert saved is not None and saved.step == 8 and saved.extra == {"note": 1}
    torch.testing.assert_close(saved.tensors["w"], torch.ones(2))


def test_progress_of_another_configuration_is_refused(tmp_path):
    config = small_config(checkpoint_dir=str(tmp_path))
    common.save_progress(context(config), 8, {"w": torch.zeros(2)}, {})
    other = small_config(checkpoint_dir=str(tmp_path), nu_post=0.5)
    with pytest.raises(CheckpointError, match="another run") as refused:
        common.load_progress(context(other))
    assert "nu_post: 0.01 -> 0.5" in str(refused.value)
    assert "nu_pre" not in str(refused.value)  # only what differs is named
    held_out = dataclasses.replace(context(config), validation=100)  # other training images
    with pytest.raises(CheckpointError, match="validation 0, now 100"):
        common.load_progress(held_out)
    reseeded = dataclasses.replace(context(config), seed=7)
    with pytest.raises(CheckpointError, match="seed 0, now 7"):
        common.load_progress(reseeded)
    assert common.load_progress(context(config)).step == 8


def test_progress_from_before_a_neutral_setting_existed_still_resumes(tmp_path):
    config = small_config(checkpoint_dir=str(tmp_path))
    older = {k: v for k, v in config.items() if k != "refire_ms"}  # before the setting existed
    common.save_progress(context(older), 8, {"w": torch.zeros(2)}, {})
    assert common.NEUTRAL_SETTINGS["refire_ms"] == config["refire_ms"]  # the recipe's default
    assert common.load_progress(context(config)).step == 8
    with pytest.raises(CheckpointError, match=r"refire_ms: '-' -> 50\.0"):
        common.load_progress(context({**config, "refire_ms": 50.0}))


def test_progress_saved_without_its_settings_is_refused_by_kind_of_difference(tmp_path):
    from deepspike.io import load_checkpoint, save_checkpoint

    config = small_config(checkpoint_dir=str(tmp_path))
    common.save_progress(context(config), 8, {"w": torch.zeros(2)}, {})
    path = tmp_path / common.PROGRESS_FILE
    tensors, meta = load_checkpoint(path)
    del meta["settings"]  # as written before the settings were recorded
    save_checkpoint(path, tensors, meta)
    assert common.load_progress(context(config)).step == 8
    with pytest.raises(CheckpointError, match="its settings differ; to continue it"):
        common.load_progress(context(small_config(checkpoint_dir=str(tmp_path), nu_post=0.5)))


def test_labels_go_to_the_class_with_the_highest_average_response():
    counts = torch.tensor([[5.0, 0.0], [3.0, 1.0], [0.0, 2.0], [0.0, 4.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assignments = common.assign_labels(counts, labels, n_classes=2)
    assert assignments.tolist() == [0, 1]
    assert common.vote(counts, assignments, 2).tolist() == [0, 0, 1, 1]


def test_silent_neurons_stay_unassigned_and_do_not_dilute_a_class_vote():
    counts = torch.tensor([[4.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # neuron 2 never fires
    labels = torch.tensor([0, 1])
    assignments = common.assign_labels(counts, labels, n_classes=2)
    assert assignments.tolist() == [0, 1, common.UNASSIGNED]
    votes = common.class_votes(torch.tensor([[3.0, 1.0, 5.0]]), assignments, 2)
    assert votes.tolist() == [[3.0, 1.0]]  # class 0 is neuron 0 alone, not the mean with 2
    assert common.neurons_per_class(assignments, 2) == {
        "neurons_per_class": [1, 1],
        "unassigned_neurons": 1,
    }


def test_diehl_cook_records_the_paper_number_and_model_for_its_size():
    ctx = Context(
        config=get_recipe("diehl2015-stdp").config({"n_neurons": 400}, "full"),
        dataset="mnist",
        data_dir=None,
        seed=0,
        generator=torch.Generator(),
    )
    extra = dc._extra(ctx, torch.zeros(400, dtype=torch.long))
    assert extra["paper_accuracy_for_setting"] == 87.0
    assert (extra["synapse"], extra["stdp_rule"]) == tuple(dc.model_for(ctx.config).values())
    assert extra["tau_theta_ms"] == 1e7
    assert dc.epochs_for({"epochs": 0, "n_neurons": 6400}) == 15


def test_images_per_second_measures_the_training_loop():
    rate = dc.images_per_second(
        n_neurons=20, presentation_ms=50.0, n_images=32, batch_size=16, dataset="digits"
    )
    assert rate > 0


def test_wta_potentials_are_weights_times_epsps_computed_from_onsets_and_offsets():
    from deepspike.learning import box
    from deepspike.recipes.nessler2013_wta import StochasticWTA

    g = torch.Generator().manual_seed(0)
    model = StochasticWTA(6, 3, sigma_steps=4, rate=0.5)
    with torch.no_grad():
        model.synapses.weight.copy_(-torch.rand(3, 6, generator=g))
        model.excitability.copy_(-torch.rand(3, generator=g))
    spikes = (torch.rand(20, 2, 6, generator=g) < 0.3).float()
    direct = box(spikes, 4) @ model.synapses.weight.T + model.excitability
    assert torch.allclose(model.potentials(spikes), direct, atol=1e-5)


def test_wave_times_store_cumulative_waves_exactly():
    from deepspike.recipes import _conv_stdp as conv

    times = torch.tensor([[0, 3, 5], [2, 4, 1]], dtype=torch.uint8)  # 5 = never, for T = 5
    waves = conv.waves_at(times, 5)
    assert waves.shape == (5, 2, 3)
    assert waves[:, 0, 1].tolist() == [0, 0, 0, 1, 1]
    assert float(waves[:, 0, 2].sum()) == 0.0
    torch.testing.assert_close(conv.wave_times(waves), times, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="255"):
        conv.wave_times(torch.zeros(300, 1))


@pytest.mark.parametrize("threshold", [1e9, 40.0, 5.0])
@pytest.mark.parametrize(("size", "padding"), [(3, 0), (4, 1)])
def test_decision_potentials_match_the_convolution_and_shortcut_only_when_nothing_fires(
    threshold, size, padding
):
    from deepspike.layers import Conv2d
    from deepspike.recipes import _conv_stdp as conv
    from deepspike.recipes import mozafari2019_rstdp as moz

    g = torch.Generator().manual_seed(2)
    layer = Conv2d(4, 20, 3, padding=padding, bias=False)  # steps folded into the batch
    with torch.no_grad():
        layer.weight.copy_(torch.rand(20, 4, 3, 3, generator=g))
    times = torch.randint(0, 11, (6, 4, size, size), generator=g).to(torch.uint8)  # 10 = never
    waves = conv.waves_at(times, 10)
    with torch.no_grad():
        full = conv.potentials(waves, layer)  # [T, B, maps, H', W'] by the layer itself
    fast = moz.decision_potentials(times, layer, 10, threshold)
    assert fast.shape[-1] == full[0, 0, 0].numel()  # one column per position
    for got, want in zip(moz.decide(fast, threshold), moz.decide(full, threshold), strict=True):
        torch.testing.assert_close(got, want)
    if float(full.max()) >= threshold:
        torch.testing.assert_close(fast, full.flatten(3), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("threshold", [1e9, 4.0])  # no neuron fires / some fire before the end
def test_decision_equals_decide_on_the_stepped_potentials_bit_for_bit(threshold):
    from deepspike.layers import Conv2d
    from deepspike.recipes import _conv_stdp as conv
    from deepspike.recipes import mozafari2019_rstdp as moz

    g = torch.Generator().manual_seed(6)
    layer = Conv2d(4, 20, 5, padding=2, bias=False)  # steps folded into the batch
    with torch.no_grad():
        layer.weight.copy_(torch.rand(20, 4, 5, 5, generator=g))
    times = torch.randint(0, 11, (8, 4, 4, 4), generator=g).to(torch.uint8)  # 10 = never
    keep = torch.rand(8, 20, generator=g) > 0.2
    with torch.no_grad():
        stepped = conv.potentials(conv.waves_at(times, 10), layer).flatten(3)
    winner, step = moz.decide(stepped, threshold, keep)
    fired_by_step = (times <= step.reshape(-1, 1, 1, 1)).float()
    want_patch = moz.patch_at(fired_by_step, layer, winner % 16)
    got_winner, got_patch = moz.decision(times, layer, 10, threshold, keep)
    assert torch.equal(got_winner, winner) and torch.equal(got_patch, want_patch)
    assert (float(stepped.max()) >= threshold) == (threshold == 4.0)  # both paths exercised


def test_decide_picks_the_largest_potential_over_maps_and_positions():
    from deepspike.recipes import mozafari2019_rstdp as moz

    v = torch.zeros(3, 1, 20, 4)  # [T, B, maps, positions]
    v[-1, 0, 13, 2] = 5.0
    v[-1, 0, 4, 1] = 4.0
    winner, step = moz.decide(v, 1e9)
    assert int(winner) == 13 * 4 + 2 and int(step) == 2
    assert int(moz.classes_of(winner, 20, 4)) == 6  # maps 12, 13 are class 6
    keep = torch.ones(1, 20, dtype=torch.bool)
    keep[0, 13] = False  # map 13 dropped out: the next largest decides
    assert int(moz.decide(v, 1e9, keep)[0]) == 4 * 4 + 1


def test_without_inhibition_the_final_wave_alone_gives_the_same_decisions():
    from deepspike import data
    from deepspike.recipes import mozafari2019_rstdp as moz
    from deepspike.recipes.registry import get_recipe

    c = dict(get_recipe("mozafari2019-rstdp").config({}, "smoke"))
    c.update(lateral_inhibition=False, threshold1=8.0, threshold2=40.0)
    assert moz.only_the_final_wave_decides(c)
    g = torch.Generator().manual_seed(4)
    stack = moz.build(c)
    stack.initialise(g, mean=0.5, std=0.3)
    images = data.load("digits", "train")[0][:12].float()
    fast = moz.decision_inputs(c, stack, images)
    slow = moz.decision_inputs({**c, "threshold3": 10.0}, stack, images)  # every step
    steps = c["timesteps"]
    assert 0 < int((slow < steps).sum()) < slow.numel()  # some inputs fired, not all
    assert torch.equal(fast < steps, slow < steps)
    with torch.no_grad():
        full = stack(moz.front_end(c, images), inhibit=False)
    want = moz.classes_of(moz.decide(full, c["threshold3"])[0], c["decision_maps"], 1)
    assert torch.equal(moz.predict(c, stack, images), want)


def test_kheradpisheh_features_without_inhibition_need_only_the_final_wave():
    from deepspike import data
    from deepspike.recipes import kheradpisheh2018_sdnn as kh
    from deepspike.recipes.registry import get_recipe

    c = {**get_recipe("kheradpisheh2018-sdnn").config({}, "smoke"), "lateral_inhibition": False}
    stack = kh.build(c)
    stack.initialise(torch.Generator().manual_seed(5), mean=0.5, std=0.3)
    images = data.load("digits", "train")[0][:10].float()
    with torch.no_grad():
        full = stack(kh.front_end(c, images), inhibit=False)[-1]  # all T steps
        want = F.max_pool2d(full, c["readout_pool"], ceil_mode=True).flatten(1)
        got = kh.features(c, stack, images)
    assert float(want.abs().sum()) > 0
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(("size", "padding"), [(4, 2), (5, 0), (3, 1)])
def test_patch_at_is_the_unfolded_column_of_the_position(size, padding):
    from deepspike.recipes import mozafari2019_rstdp as moz

    g = torch.Generator().manual_seed(8)
    conv3 = torch.nn.Conv2d(3, 4, 3 if size == 3 else 5, padding=padding, bias=False)
    x = torch.rand(5, 3, size, size, generator=g)
    columns = moz.patches(x, conv3)  # [B, C*k*k, P]
    position = torch.randint(0, columns.shape[-1], (5,), generator=g)
    want = columns[torch.arange(5), :, position]
    torch.testing.assert_close(moz.patch_at(x, conv3, position), want, rtol=0, atol=0)


def one_image_both_ways(conv, spec, times, steps, rates):
    """The weights after one image trained by the compiled kernel and by the torch path, from
    the same start."""
    from deepspike.learning import apply_update
    from deepspike.recipes import _conv_stdp as conv_stdp

    start = conv.weight.detach().clone()
    winners = conv_stdp.compiled_image(conv, spec, times, steps, rates)
    compiled = conv.weight.detach().clone()
    with torch.no_grad():
        conv.weight.copy_(start)
        waves = conv_stdp.waves_at(times.unsqueeze(0), steps)
        v = conv_stdp.potentials(waves, conv)
        delta = conv_stdp.winner_updates(waves, v, conv, spec, rates)
    apply_update(
        conv.weight, delta.rows, torch.optim.SGD([conv.weight], lr=1.0), (0, 1), delta.units
    )
    return winners, compiled, conv.weight.detach().clone(), delta.units


@pytest.mark.parametrize(
    ("kernel", "padding", "k", "radius", "pointwise", "equal"),
    [
        (5, 2, 5, 3, False, False),
        (3, 1, 8, 1, False, False),
        (5, 0, 3, 0, True, False),
        (3, 1, 4, 1, True, False),
        (3, 1, 4, 1, False, True),  # every weight equal: ties everywhere
        (3, 1, 4, 1, True, True),
    ],
)
def test_compiled_conv_stdp_matches_the_torch_path_bit_for_bit(
    kernel, padding, k, radius, pointwise, equal
):
    """Weights that are multiples of 2^-10 make every potential exact in float32, so both paths
    must pick the same winners (ties included) and write the same float32 updates."""
    from deepspike.layers import Conv2d
    from deepspike.recipes import _conv_stdp as conv_stdp

    g = torch.Generator().manual_seed(kernel + 10 * k)
    conv = Conv2d(4, 12, kernel, padding=padding, bias=False)
    spec = conv_stdp.ConvSpec(12, kernel, 6.0, padding, k, radius, pointwise=pointwise)
    exercised = set()
    for _ in range(12):
        with torch.no_grad():
            if equal:
                conv.weight.fill_(0.5)
            else:
                conv.weight.copy_(torch.randint(0, 1025, conv.weight.shape, generator=g) / 1024)
        times = torch.randint(0, 14, (4, 9, 9), generator=g).to(torch.uint8)  # 10+ = never
        winners, compiled, torch_path, units = one_image_both_ways(
            conv, spec, times, 10, (0.05, -0.0375)
        )
        assert sorted(winners[:, 0].tolist()) == units.tolist()
        torch.testing.assert_close(compiled, torch_path, rtol=0, atol=0)
        exercised.add(min(len(winners), k))
    # several winners an image, except where one map is every position's best
    assert max(exercised) >= (1 if pointwise and equal else 2)


def test_compiled_conv_stdp_layer_training_follows_the_torch_path(monkeypatch):
    """A whole layer trained image by image: the compiled path ends where the torch path does
    (float32 sums in another order, so equal to rounding)."""
    from deepspike import data
    from deepspike.recipes import _conv_stdp as conv_stdp
    from deepspike.recipes import mozafari2019_rstdp as moz

    c = dict(get_recipe("mozafari2019-rstdp").config({}, "smoke"))
    images = data.load("digits", "train")[0][:40].float()
    applies = conv_stdp.compiled_applies
    weights = {}
    for compiled in (True, False):
        stack = moz.build(c)
        stack.initialise(torch.Generator().manual_seed(1))
        before = stack.convs[0].weight.detach().clone()
        assert applies(stack.convs[0], 1)
        monkeypatch.setattr(conv_stdp, "compiled_applies", lambda *a, on=compiled: on)
        conv_stdp.train_layer(
            stack, 0, lambda idx: moz.front_end(c, images[idx]), 40, 40, 1,
            conv_stdp.Schedule(0.05, -0.0375, 0), torch.Generator().manual_seed(2),
            stop_when_converged=False,
        )  # fmt: skip
        weights[compiled] = stack.convs[0].weight.detach().clone()
        assert (weights[compiled] - before).abs().max() > 0.1  # it learned
    torch.testing.assert_close(weights[True], weights[False], rtol=0, atol=1e-5)


def dyadic_decision_layer(dropout=0.0, stabilizer=False, threshold=1e9):
    """A Mozafari config and stack whose decision weights, R-STDP rates and bounds are
    multiples of 2^-10 (so every potential is exact in float32, in any order), and inputs with
    about a third of the conv2 neurons fired by the last step (uint8 steps, 15 = never): all
    at step 0 when the threshold is out of reach (as :func:`decision_inputs` marks them), at
    random steps otherwise."""
    from deepspike.recipes import mozafari2019_rstdp as moz

    c = dict(get_recipe("mozafari2019-rstdp").config({}, "full"))
    c.update(maps2=12, decision_maps=20, rstdp_w_min=0.25, rstdp_w_max=0.75, dropout=dropout)
    c.update(rstdp_stabilizer=stabilizer, threshold3=threshold)
    stack = moz.build(c)
    g = torch.Generator().manual_seed(11)
    conv3 = stack.convs[-1]
    with torch.no_grad():
        conv3.weight.copy_(torch.randint(256, 769, conv3.weight.shape, generator=g) / 1024)
    fired = torch.rand(40, 12, 4, 4, generator=g) < 0.35
    steps = torch.randint(0, c["timesteps"], fired.shape, generator=g)
    if moz.only_the_final_wave_decides(c):
        steps.zero_()
    inputs = torch.where(fired, steps, c["timesteps"]).to(torch.uint8)
    labels = torch.randint(0, 10, (40,), generator=g)
    return c, stack, inputs, labels


@pytest.mark.parametrize(
    ("dropout", "stabilizer", "images", "threshold"),
    [
        (0.0, False, 40, 1e9),
        (0.3, False, 40, 1e9),
        (0.0, True, 1, 1e9),
        (0.0, False, 40, 36.0),
        (0.3, False, 40, 36.0),
    ],
)
def test_compiled_rstdp_chunk_matches_the_torch_path_bit_for_bit(
    monkeypatch, dropout, stabilizer, images, threshold
):
    """The compiled loop and the torch path make the same decisions and the same updates, and
    draw the same dropout masks, with the last step deciding or the earliest spike under a
    reachable threshold. With the stabiliser the update is no longer a multiple of 2^-10, so
    later float32 products could round differently: one image checks its arithmetic."""
    from deepspike.recipes import mozafari2019_rstdp as moz

    rates = ((2**-7, -(2**-8)), (2**-9, -(2**-7)))
    runs = {}
    for compiled in (True, False):
        c, stack, inputs, labels = dyadic_decision_layer(dropout, stabilizer, threshold)
        assert moz.compiled_chunk_applies(c, stack.convs[-1])
        monkeypatch.setattr(moz, "compiled_chunk_applies", lambda *_, on=compiled: on)
        ctx = Context(c, "mnist", None, 0, torch.Generator().manual_seed(3))
        order = torch.randperm(40, generator=torch.Generator().manual_seed(4))[:images]
        before = stack.convs[-1].weight.detach().clone()
        hits, misses = moz._rstdp_chunk(ctx, stack, inputs, labels, order, rates)
        runs[compiled] = (hits, misses, stack.convs[-1].weight.detach(), ctx.generator.get_state())
        assert hits + misses == images and not torch.equal(before, runs[compiled][2])
    (hits, misses, weight, state), (t_hits, t_misses, t_weight, t_state) = runs[True], runs[False]
    assert (hits, misses) == (t_hits, t_misses)
    assert images == 1 or 0 < hits < images  # rewards and punishments both exercised
    torch.testing.assert_close(weight, t_weight, rtol=0, atol=0)
    assert torch.equal(state, t_state)


@pytest.mark.parametrize("equal_weights", [False, True])
def test_compiled_rstdp_chunk_decides_on_the_exact_largest_potential(equal_weights):
    """The winners are those of the dense convolution of the input, ranked exactly; ties (all
    maps equal) go to the first in map x position order, as torch's argmax."""
    from deepspike.recipes import mozafari2019_rstdp as moz

    c, stack, inputs, labels = dyadic_decision_layer()
    conv3 = stack.convs[-1]
    if equal_weights:
        with torch.no_grad():
            conv3.weight.fill_(0.5)
    c.update(rstdp_w_min=0.0, rstdp_w_max=1.0)  # unclipped updates, then compare decisions
    order = torch.arange(6)
    zero = ((0.0, 0.0), (0.0, 0.0))  # no learning: each decision from the same weights
    _, winners = moz.compiled_chunk(c, conv3, inputs, labels, order, zero)
    with torch.no_grad():
        v = F.conv2d((inputs[:6] < c["timesteps"]).double(), conv3.weight.double(), padding=2)
    assert torch.equal(winners, v.flatten(1).argmax(1))
    assert (winners < 16).all() == equal_weights  # ties: map 0 wins


def test_compiled_rstdp_chunk_decides_on_the_earliest_spike():
    """Under a reachable threshold the winner is the first neuron to reach it (the largest
    potential at that step), from the dense convolution of each step's cumulative input; some
    images decide before the last step, on a different neuron than the last step's largest
    potential. (Which inputs count as before the decision is checked against the torch path
    in the bit-for-bit test above.)"""
    from deepspike.recipes import mozafari2019_rstdp as moz

    c, stack, inputs, labels = dyadic_decision_layer(threshold=36.0)
    conv3, steps = stack.convs[-1], c["timesteps"]
    order = torch.arange(40)
    zero = ((0.0, 0.0), (0.0, 0.0))
    _, winners = moz.compiled_chunk(c, conv3, inputs, labels, order, zero)
    with torch.no_grad():
        waves = torch.stack([(inputs <= t).double() for t in range(steps)])  # [T, N, C, H, W]
        v = F.conv2d(waves.flatten(0, 1), conv3.weight.double(), padding=2)
    v = v.reshape(steps, 40, -1)  # [T, N, maps x positions]
    reached = (v >= 36.0).any(2)  # [T, N]
    first = torch.where(reached.any(0), reached.float().argmax(0), steps - 1)
    expected = v[first, torch.arange(40)].argmax(1)
    assert torch.equal(winners, expected)
    early = first < steps - 1
    assert early.any() and (~early).any()
    assert (expected != v[-1].argmax(1))[early].any()


class _Stop(Exception):
    pass


def mozafari_smoke(tmp_path, out, resume=False, **overrides):
    """A smoke-setting Mozafari run on 300 digits into ``tmp_path / out``."""
    return runner.train(
        "mozafari2019-rstdp",
        out=tmp_path / out,
        dataset="digits",
        profile="smoke",
        progress=False,
        overrides={"n_train": 300, **overrides},
        resume=resume,
    )


def stopped_then_resumed(tmp_path, monkeypatch, stop_after, **overrides):
    """Run into ``tmp_path / "resumed"``, stopped right after the progress save for which
    ``stop_after(step, extra)`` holds, then resume it; returns the resumed run's record."""
    from deepspike.recipes import mozafari2019_rstdp as moz

    saving = moz.common.save_progress

    def stopping(ctx, step, tensors, extra):
        saving(ctx, step, tensors, extra)
        if stop_after(step, extra):
            raise _Stop

    monkeypatch.setattr(moz.common, "save_progress", stopping)
    with pytest.raises(_Stop):
        mozafari_smoke(tmp_path, "resumed", **overrides)
    monkeypatch.setattr(moz.common, "save_progress", saving)
    return mozafari_smoke(tmp_path, "resumed", resume=True, **overrides)


def assert_same_checkpoint(want_dir, got_dir):
    from deepspike.io.checkpoint import load_checkpoint

    want = load_checkpoint(want_dir / "checkpoint.safetensors")[0]
    got = load_checkpoint(got_dir / "checkpoint.safetensors")[0]
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize(("layer", "images"), [(0, 200), (1, 300)])
def test_mozafari_resumes_inside_the_conv_phase_with_identical_weights(
    tmp_path, monkeypatch, layer, images
):
    """A run stopped while conv1 (mid-pass) or conv2 (at a pass boundary) trains continues from
    its progress file to the same network as a run never stopped."""
    from deepspike.recipes import mozafari2019_rstdp as moz

    def in_the_conv_phase(_step, extra):
        where = extra.get(moz.CONV_PHASE)
        return where is not None and (where["layer"], where["images"]) == (layer, images)

    settings = {"rstdp_epochs": 1, "checkpoint_every": 100}
    straight = mozafari_smoke(tmp_path, "straight", **settings)
    resumed = stopped_then_resumed(tmp_path, monkeypatch, in_the_conv_phase, **settings)
    assert resumed["extra"]["layer1"] == straight["extra"]["layer1"]
    assert resumed["extra"]["rstdp_train_accuracy"] == straight["extra"]["rstdp_train_accuracy"]
    assert_same_checkpoint(tmp_path / "straight", tmp_path / "resumed")


def test_mozafari_resumes_or_extends_with_identical_weights(tmp_path, monkeypatch):
    def run(out, resume=False, epochs=3):
        return mozafari_smoke(tmp_path, out, resume, rstdp_epochs=epochs)

    straight = run("straight")
    resumed = stopped_then_resumed(
        tmp_path, monkeypatch, lambda step, _extra: step == 1, rstdp_epochs=3
    )
    assert resumed["extra"]["resumed_at_epoch"] == 1
    assert resumed["extra"]["rstdp_train_accuracy"] == straight["extra"]["rstdp_train_accuracy"]
    assert resumed["accuracy"] == straight["accuracy"]
    assert_same_checkpoint(tmp_path / "straight", tmp_path / "resumed")

    # a finished run of one epoch, extended to three, equals the three-epoch run
    run("extended", epochs=1)
    extended = run("extended", resume=True)
    assert extended["extra"]["resumed_at_epoch"] == 1
    assert extended["extra"]["rstdp_train_accuracy"] == straight["extra"]["rstdp_train_accuracy"]
    assert_same_checkpoint(tmp_path / "straight", tmp_path / "extended")
    with pytest.raises(CheckpointError, match="past the 1 epochs that rstdp_epochs sets"):
        run("extended", resume=True, epochs=1)


def test_mozafari_retina_thresholds_normalises_locally_and_ranks():
    from deepspike.recipes import _conv_stdp as conv

    maps = torch.zeros(1, 1, 9, 9)
    maps[0, 0, 4, 4] = 2.0
    maps[0, 0, 0, 0] = 0.5
    normal = conv.local_normalisation(maps, radius=1)
    # the centre: 2 / mean(3x3) = 2 / (2/9) = 9; the corner sees 4 cells (zeros outside)
    assert float(normal[0, 0, 4, 4]) == pytest.approx(9.0)
    assert float(normal[0, 0, 0, 0]) == pytest.approx(9.0)
    assert float(normal[0, 0, 2, 2]) == 0.0
    values = torch.tensor([[[[4.0, 3.0, 2.0, 1.0, 0.0, 0.0]]]])
    waves = conv.rank_waves(values, steps=2)  # 4 active inputs, 2 per step, zeros never fire
    assert waves[:, 0, 0, 0].tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]]
    image = torch.zeros(1, 13, 13)
    image[0, 6, 6] = 1.0  # a bright dot: ON responds at the dot, OFF around it
    scales = [(3, 3 / 9, 6 / 9)]
    raw = conv.thresholded_dog_maps(image, scales, threshold=-1e9)
    assert raw.shape == (1, 2, 13, 13)
    assert float(raw[0, 0, 6, 6]) == pytest.approx(1.0)  # the ON kernel's peak is 1
    kept = conv.thresholded_dog_maps(image, scales, threshold=0.5)
    assert int((kept > 0).sum()) == int((raw >= 0.5).sum()) >= 1
    assert float(kept[raw < 0.5].abs().sum()) == 0.0


def test_a_converged_layer_trains_on_only_without_the_convergence_stop():
    from deepspike.recipes import _conv_stdp as conv

    stack = conv.ConvStack(2, [conv.ConvSpec(4, 3, threshold=2.0, padding=1, k=2, pool=0)])
    with torch.no_grad():  # binary weights: w(1 - w) = 0, converged from the start
        stack.convs[0].weight.copy_((torch.rand(stack.convs[0].weight.shape) < 0.5).float())
    waves = (torch.rand(12, 4, 2, 6, 6) < 0.3).float().cumsum(0).clamp(max=1.0)

    def waves_of(idx):
        return waves[:, idx]

    schedule = conv.Schedule()
    for stop, expected in ((True, 0), (False, 10)):
        g = torch.Generator().manual_seed(0)
        stats = conv.train_layer(stack, 0, waves_of, 4, 10, 2, schedule, g, False, True, stop)
        assert stats["images"] == expected


def _two_layer_stack():
    from deepspike.recipes import _conv_stdp as conv

    specs = [conv.ConvSpec(4, 3, threshold=1.5, padding=1, pool=2), conv.ConvSpec(3, 3, 2.0, k=2)]
    stack = conv.ConvStack(2, specs)
    stack.initialise(torch.Generator().manual_seed(1), mean=0.5, std=0.2)
    return stack


@torch.no_grad()
def test_frozen_input_is_the_frozen_layers_output_computed_once_per_image():
    from deepspike.recipes import _conv_stdp as conv

    torch.manual_seed(0)
    stack = _two_layer_stack()
    waves = (torch.rand(10, 9, 2, 8, 8) < 0.2).float().cumsum(0).clamp(max=1.0)
    computed: list[int] = []

    def frozen_output(idx):
        computed.extend(idx.tolist())
        return stack.waves(waves[:, idx], 1, True)

    frozen = conv.FrozenInput(frozen_output, 9)
    for idx, ahead in (([4], [4, 0, 7]), ([0], [0, 1, 2]), ([2, 7], [2, 7, 3]), ([3], [3, 8])):
        got = frozen.waves(torch.tensor(idx), torch.tensor(ahead))
        assert torch.equal(got, stack.waves(waves[:, idx], 1, True))
    # each image once, and a batch ahead only when one asked for is missing
    assert computed == [4, 0, 7, 2, 3]
    every = frozen.every_image(batch_size=4)  # the rest, in batches of the index order
    assert computed == [4, 0, 7, 2, 3, 1, 5, 6, 8]
    assert torch.equal(every, conv.wave_times(stack.waves(waves, 1, True)))


def test_training_above_frozen_layers_runs_them_once_per_image_and_learns_the_same(monkeypatch):
    from deepspike.recipes import _conv_stdp as conv

    torch.manual_seed(0)
    waves = (torch.rand(10, 9, 2, 8, 8) < 0.2).float().cumsum(0).clamp(max=1.0)

    class Recomputed(conv.FrozenInput):  # the frozen layers run on every presentation
        def waves(self, indices, ahead):
            return self.compute(indices)

    trained = []
    for frozen_input in (conv.FrozenInput, Recomputed):
        monkeypatch.setattr(conv, "FrozenInput", frozen_input)
        stack, images_in = _two_layer_stack(), []
        original = stack.waves

        def counted(w, upto, inhibit=True, original=original, images_in=images_in):
            images_in.append(w.shape[1])
            return original(w, upto, inhibit)

        stack.waves = counted
        g = torch.Generator().manual_seed(0)
        schedule = conv.Schedule(0.05, -0.04, 0)
        stats = conv.train_layer(stack, 1, lambda i: waves[:, i], 9, 27, 2, schedule, g)
        assert stats["images"] == 27
        trained.append((stack.convs[1].weight.detach().clone(), sum(images_in)))
    (cached, cached_runs), (recomputed, recomputed_runs) = trained
    assert cached_runs == 9 and recomputed_runs == 27  # three passes over nine images
    assert not torch.equal(recomputed, _two_layer_stack().convs[1].weight)  # it learned
    assert torch.equal(cached, recomputed)


def test_rate_schedule_doubles_then_stops_or_clamps_at_the_maximum():
    from deepspike.recipes import _conv_stdp as conv

    stop = conv.Schedule(0.004, -0.003, 500, 0.15)
    clamp = conv.Schedule(0.004, -0.003, 500, 0.15, clamp=True)
    assert stop.rates(499) == clamp.rates(499) == (0.004, -0.003)
    assert stop.rates(500) == clamp.rates(500) == (0.008, -0.006)
    assert stop.rates(5 * 500) == clamp.rates(5 * 500) == (0.128, -0.096)
    assert stop.rates(6 * 500) == stop.rates(60 * 500) == (0.128, -0.096)
    for images in (6 * 500, 60 * 500):
        a_plus, a_minus = clamp.rates(images)
        assert a_plus == pytest.approx(0.15) and a_minus == pytest.approx(-0.1125)


def test_nessler_probability_update_is_the_running_average_and_stays_bounded():
    from deepspike.learning import nessler_stdp
    from deepspike.recipes import nessler2013_wta as ness

    post = torch.tensor([[1.0, 0.0]])  # neuron 0 fires once, neuron 1 not
    recent = torch.tensor([[1.0, 0.0, 1.0]])
    w = torch.log(torch.tensor([[0.5, 0.5, math.exp(ness.LOG_FLOOR)], [0.3, 0.3, 0.3]]))
    p = ness.probability_update(recent, post, w, lr=0.1)
    # p + lr (y - p) for the neuron that fired; the other row is unchanged
    expected0 = torch.tensor([0.55, 0.45, math.exp(ness.LOG_FLOOR) * 0.9 + 0.1])
    torch.testing.assert_close(p[0], expected0)
    torch.testing.assert_close(p[1], torch.full((3,), 0.3))
    # the log-space rule jumps the floor weight by lr (e^8 - 1): far past the ceiling
    assert float(nessler_stdp(recent, post, w, lr=0.1)[0, 2]) > 100.0
    # to first order in lr, the two agree: e^{w + dw} ~ p_new
    small = ness.probability_update(recent[:, :2], post, w[:, :2].contiguous(), lr=1e-4)
    first_order = torch.exp(w[:, :2] + nessler_stdp(recent[:, :2], post, w[:, :2], lr=1e-4))
    torch.testing.assert_close(small, first_order, rtol=1e-6, atol=1e-7)


def test_nessler_homeostasis_lowers_the_excitability_of_neurons_above_their_share():
    from deepspike.recipes import nessler2013_wta as ness

    model = ness.StochasticWTA(n_inputs=6, n_outputs=3, sigma_steps=2, rate=1.0)
    model.generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.synapses.weight.fill_(-1.0)
        model.excitability.copy_(torch.tensor([5.0, 0.0, 0.0]))  # neuron 0 wins nearly always
    spikes = (torch.rand(20, 4, 6, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    ness.learn(model, spikes, lr=0.0, prior_lr=0.0, homeostasis_lr=0.01)
    b = model.excitability
    # 80 spikes, nearly all from neuron 0: it drops by about 0.01 (80 - 80/3); the others rise
    assert float(b[0]) < 5.0 - 0.4 and float(b[1]) > 0.0 and float(b[2]) > 0.0
    assert float(b.sum()) == pytest.approx(5.0)  # the updates sum to zero


def test_a_batch_without_winners_leaves_the_weights_unchanged():
    """Regression: a batch where no neuron reaches threshold made the winner update reshape
    an empty tensor with -1 and fail (the quick setting of mozafari2019-rstdp hit it)."""
    from deepspike.recipes import _conv_stdp as conv

    spec = conv.ConvSpec(4, 3, threshold=1e6, padding=1, k=2, pool=0)  # unreachable
    stack = conv.ConvStack(2, [spec])
    waves = (torch.rand(5, 2, 2, 6, 6) < 0.3).float().cumsum(0).clamp(max=1.0)
    with torch.no_grad():  # as in training
        v = conv.potentials(waves, stack.convs[0])
        delta = conv.winner_updates(waves, v, stack.convs[0], spec, (0.004, -0.003))
    assert delta.rows.shape[0] == 0 and delta.units.numel() == 0


@pytest.mark.parametrize(("pointwise", "winning_maps"), [(False, [0, 1]), (True, [0])])
def test_pointwise_inhibition_lets_a_feature_win_only_where_it_fires_first(pointwise, winning_maps):
    """Two 1x1 maps (weights 0.9 and 0.5) both fire at positions 0 and 2 at step 0. Map 0 wins
    at position 0; without pointwise inhibition map 1 then wins at position 2, where map 0
    fired with the larger potential; with it, map 1 has no position of its own and learns
    nothing (Mozafari et al.'s SpykeTorch code inhibits pointwise before taking k winners)."""
    from deepspike.recipes import _conv_stdp as conv

    spec = conv.ConvSpec(2, 1, threshold=0.4, k=2, radius=0, pool=0, pointwise=pointwise)
    stack = conv.ConvStack(1, [spec])
    with torch.no_grad():
        stack.convs[0].weight.copy_(torch.tensor([0.9, 0.5]).view(2, 1, 1, 1))
        waves = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 1, 3).expand(2, 1, 1, 1, 3)
        v = conv.potentials(waves, stack.convs[0])
        delta = conv.winner_updates(waves, v, stack.convs[0], spec, (0.004, -0.003))
    assert delta.units.tolist() == winning_maps
    # each winner's single input fired before it: potentiated by a+ w (1 - w)
    expected = [0.004 * w * (1 - w) for w in (0.9, 0.5)[: len(winning_maps)]]
    torch.testing.assert_close(delta.rows.view(-1), torch.tensor(expected))


def test_nessler_unknown_weight_update_is_refused_by_name():
    from deepspike.errors import ConfigError
    from deepspike.recipes import nessler2013_wta as nessler

    config = get_recipe("nessler2013-wta").config({}, "smoke")
    assert nessler.in_probability_space(config)
    assert not nessler.in_probability_space({**config, "weight_update": "log"})
    with pytest.raises(ConfigError, match="weight_update='logs' is unknown"):
        nessler.in_probability_space({**config, "weight_update": "logs"})
