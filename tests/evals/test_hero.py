from realm_kernel.evals.hero import hero_stats, inverse


def stats(**kw):
    base = dict(name="DIO", steps=0, loss=None, val_loss=None, accuracy=None, quests_completed=0)
    return hero_stats(**{**base, **kw})


def test_level_and_xp_come_from_steps():
    s = stats(steps=2345)
    assert (s.level, s.xp, s.xp_into_level, s.xp_per_level) == (2, 2345, 345, 1000)
    assert stats(steps=999).level == 0
    assert stats(steps=1000).level == 1


def test_atk_def_are_inverse_losses():
    s = stats(loss=0.5, val_loss=0.25)
    assert s.atk == 2.0 and s.defense == 4.0


def test_undefined_losses_give_no_stat():
    assert inverse(None) is None and inverse(0.0) is None
    assert inverse(float("nan")) is None and inverse(float("inf")) is None
    assert inverse(-1.0) is None


def test_gold_is_100_per_completed_quest_and_acc_is_last_eval():
    s = stats(quests_completed=3, accuracy=0.8125)
    assert s.gold == 300 and s.acc == 0.8125
    assert stats().acc is None


def test_negative_steps_are_clamped():
    assert stats(steps=-5).xp == 0


def test_def_is_the_inverse_of_the_fixed_held_out_loss_and_falls_back_to_val_loss():
    s = stats(val_loss=0.25, def_loss=0.5)
    assert s.defense == 2.0 and s.def_loss == 0.5 and s.val_loss == 0.25
    assert stats(val_loss=0.25).defense == 4.0  # no skill quest yet: the quest's own slice
