"""Transaction scripts run for real in the local shell against temporary trees."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from opsfix.engine.transaction import StepLog, Transaction, current_contents, diff, parse_log
from opsfix.plugin import Plan, Remove, Symlink, WriteFile
from opsfix.transport.base import CommandResult

from ..localsh import LocalShell


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "etc" / "app"
    (root / "conf.d").mkdir(parents=True)
    (root / "main.conf").write_text("main ok\n")
    (root / "conf.d" / "broken.conf").write_text("broken\n")
    (root / "conf.d" / "broken.conf").chmod(0o640)
    (root / "link").symlink_to(root / "missing")
    return root


def tx(tmp_path: Path, plan: Plan) -> Transaction:
    return Transaction(
        LocalShell(), plan, "t1", state_dir=str(tmp_path / "state"), backup_dir=str(tmp_path / "bk")
    )


def applied(t: Transaction) -> StepLog:
    """Prepare and apply `t` (one round trip, as the engine does); the apply's log."""
    prepared, done, _ = t.prepare_and_apply()
    assert prepared.ok and done is not None, prepared
    return done


def validate_no_broken_file() -> str:
    # a validator that sees the *staged* tree only
    return 'test ! -e "$OPSFIX_STAGE/conf.d/broken.conf" && grep -q fixed "$OPSFIX_STAGE/main.conf"'


def test_validated_plan_swaps_files_and_keeps_backups(tmp_path, tree):
    plan = Plan(
        "fix",
        changes=(
            WriteFile(str(tree / "main.conf"), b"main fixed\n"),
            Remove(str(tree / "conf.d" / "broken.conf")),
            Symlink(str(tree / "link"), str(tree / "main.conf")),
            WriteFile(str(tree / "new" / "added.conf"), b"added\n", mode=0o600),
        ),
        stage_root=str(tree),
        # the second sees what is live while the staged tree is validated
        validate=(validate_no_broken_file(), f"cat {tree}/main.conf > {tmp_path}/live"),
        act=(f"touch {tmp_path}/acted",),
    )
    t = tx(tmp_path, plan)
    done = applied(t)
    assert done.ok, done
    assert (tmp_path / "live").read_text() == "main ok\n"  # nothing live changed before
    assert (tree / "main.conf").read_text() == "main fixed\n"
    assert not (tree / "conf.d" / "broken.conf").exists()
    assert (tree / "link").resolve() == tree / "main.conf"
    assert oct((tree / "new" / "added.conf").stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "acted").exists()
    backup = tmp_path / "bk" / "t1"
    assert (backup / str(tree).lstrip("/") / "main.conf").read_text() == "main ok\n"
    assert (backup / str(tree).lstrip("/") / "conf.d" / "broken.conf").read_text() == "broken\n"
    assert not [p for p in tree.rglob(".opsfix-*")]  # no temp files left behind


def test_failed_validation_changes_nothing(tmp_path, tree):
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    plan = Plan(
        "fix",
        changes=(WriteFile(str(tree / "main.conf"), b"still bad\n"),),
        stage_root=str(tree),
        validate=(validate_no_broken_file(),),
        act=(f"touch {tmp_path}/acted",),
    )
    prepared, done, _ = tx(tmp_path, plan).prepare_and_apply()
    assert not prepared.ok and done is None
    assert prepared.failed_phase == "validate"
    assert prepared.outputs[0][1] != 0
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "acted").exists()


def test_restore_puts_everything_back(tmp_path, tree):
    plan = Plan(
        "fix",
        changes=(
            WriteFile(str(tree / "main.conf"), b"main fixed\n"),
            Remove(str(tree / "conf.d" / "broken.conf")),
            WriteFile(str(tree / "brand-new.conf"), b"x\n"),
        ),
        rollback=(f"touch {tmp_path}/rolled",),
    )
    t = tx(tmp_path, plan)
    assert applied(t).ok
    restored = t.restore()
    assert restored.ok, restored
    assert (tree / "main.conf").read_text() == "main ok\n"
    assert (tree / "conf.d" / "broken.conf").read_text() == "broken\n"
    assert oct((tree / "conf.d" / "broken.conf").stat().st_mode & 0o777) == "0o640"
    assert not (tree / "brand-new.conf").exists()
    assert (tmp_path / "rolled").exists()
    t.finish("rolled-back")
    assert (tmp_path / "state" / "t1" / "state").read_text() == "rolled-back\n"


def test_failed_act_is_reported(tmp_path, tree):
    plan = Plan("x", act=("echo boom >&2; exit 7",))
    done = applied(tx(tmp_path, plan))
    assert not done.ok and done.failed_phase == "act"
    assert done.outputs == [("echo boom >&2; exit 7", 7, "boom\n")]


def test_hostile_paths_stay_quoted(tmp_path, tree):
    evil = str(tree / "a; touch PWNED; $(id) `id`.conf")
    t = tx(tmp_path, Plan("x", changes=(WriteFile(evil, b"ok\n"),), stage_root=str(tree)))
    assert applied(t).ok
    assert Path(evil).read_text() == "ok\n"
    assert not list(tmp_path.rglob("PWNED"))


def test_diff_shows_every_change(tmp_path, tree):
    plan = Plan(
        "x",
        changes=(
            WriteFile(str(tree / "main.conf"), b"main fixed\n"),
            Remove(str(tree / "conf.d" / "broken.conf")),
        ),
    )
    current = current_contents(LocalShell(), [c.path for c in plan.changes], None)
    text = diff(plan, current)
    assert f"--- a{tree}/main.conf" in text
    assert "-main ok\n+main fixed\n" in text
    assert "+++ /dev/null" in text and "-broken\n" in text


def test_new_parent_folders_are_world_readable(tmp_path, tree):
    # a web server must be able to enter folders a restore creates
    target = tree / "assets" / "css" / "site.css"
    t = tx(tmp_path, Plan("x", changes=(WriteFile(str(target), b"body{}\n"),)))
    assert applied(t).ok
    assert oct((tree / "assets").stat().st_mode & 0o777) == "0o755"
    assert oct((tree / "assets" / "css").stat().st_mode & 0o777) == "0o755"
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_large_and_binary_files_are_summarised_not_transferred(tmp_path):
    big, binary = tmp_path / "big.log.1", tmp_path / "x.gz"
    big.write_bytes(b"line\n" * 30000)
    binary.write_bytes(b"\x1f\x8b\x00\x00")
    current = current_contents(LocalShell(), [str(big), str(binary)], None)
    assert current[str(big)] == "(150000 bytes, binary or too large to show)\n"
    assert current[str(binary)] == "(4 bytes, binary or too large to show)\n"


def test_sensitive_files_are_named_never_shown(tmp_path, tree):
    plan = Plan("x", changes=(WriteFile(str(tree / "main.conf"), b"password=hunter2\n"),))
    current = current_contents(LocalShell(), [str(tree / "main.conf")], None)
    text = diff(plan, current, hide=lambda path: path.endswith(".conf"))
    assert "sensitive file, diff not shown" in text and "hunter2" not in text
    assert "main ok" not in text


def test_prepare_and_apply_in_one_round_trip_acts_only_on_a_validated_plan(tmp_path, tree):
    shell = LocalShell()

    def plan(content: bytes) -> Plan:
        return Plan(
            "fix",
            changes=(WriteFile(str(tree / "main.conf"), content),),
            stage_root=str(tree),
            validate=(
                'test ! -e "$OPSFIX_STAGE/nothing" && grep -q fixed "$OPSFIX_STAGE/main.conf"',
            ),
            act=(f'echo "stage=${{OPSFIX_STAGE:-}}" > {tmp_path}/acted',),
        )

    def transaction(p: Plan, txid: str) -> Transaction:
        return Transaction(
            shell, p, txid, state_dir=str(tmp_path / "state"), backup_dir=str(tmp_path / "bk")
        )

    # the last one: the re-check does not hold the transaction's lock (fd 8)
    recheck = [f"cat {tree / 'main.conf'}", "echo to stderr >&2; exit 4", "test ! -e /dev/fd/8"]
    prepared, applied, rechecked = transaction(plan(b"still bad\n"), "t1").prepare_and_apply(
        recheck
    )
    assert not prepared.ok and prepared.failed_phase == "validate" and applied is None
    assert rechecked is None
    assert (tree / "main.conf").read_text() == "main ok\n"
    assert not (tmp_path / "acted").exists()

    prepared, applied, rechecked = transaction(plan(b"main fixed\n"), "t2").prepare_and_apply(
        recheck, limit=5
    )
    assert prepared.ok and prepared.outputs[0][1] == 0  # the validation's report
    assert applied is not None and applied.ok, applied
    assert rechecked is not None  # the re-check ran after the act, in the same script
    assert [(r.exit_status, r.stdout, r.stderr) for r in rechecked] == [
        (0, "main fixed\n", ""),
        (4, "", "to stderr\n"),
        (0, "", ""),
    ]
    assert (tree / "main.conf").read_text() == "main fixed\n"
    assert (tmp_path / "acted").read_text() == "stage=\n"  # no staging left for the act
    assert len(shell.scripts) == 2
    assert (tmp_path / "state" / "t2" / "state").read_text() == "applied\n"


def test_a_failed_act_in_the_one_round_trip_is_reported_as_the_apply_phase(tmp_path, tree):
    plan = Plan("fix", changes=(WriteFile(str(tree / "main.conf"), b"x\n"),), act=("exit 3",))
    prepared, applied, rechecked = tx(tmp_path, plan).prepare_and_apply(["true"])
    assert prepared.ok and rechecked is None  # no re-check after a failed act
    assert applied is not None and not applied.ok and applied.failed_phase == "act"
    assert applied.outputs == [("exit 3", 3, "")]


def test_reports_decode_with_a_base64_that_has_no_w0(tmp_path, tree):
    """GNU base64 -w0 writes one line; a base64 without it (busybox of old) goes through tr."""
    fake = tmp_path / "bin"
    fake.mkdir()
    real = shutil.which("base64")
    (fake / "base64").write_text(
        f'#!/bin/sh\nfor a; do [ "$a" = -w0 ] && exit 1; done\nexec {real} "$@"\n'
    )
    (fake / "base64").chmod(0o755)
    t = tx(tmp_path, Plan("fix", changes=(WriteFile(str(tree / "main.conf"), b"x\n"),)))
    long_output = "y" * 200  # wraps at 76 columns without -w0
    script = "\n".join(
        [*t._header(), f'printf %s {long_output} > "$o"', 'report act:0 0 "$o"']
    ).replace('o="$W/out"', f"o={tmp_path}/out")
    for path in (f"{fake}:{os.environ['PATH']}", os.environ["PATH"]):
        done = subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, env={"PATH": path}
        )
        log = parse_log(CommandResult(script, done.returncode, done.stdout), Plan("f", act=("a",)))
        assert log.outputs == [("a", 0, long_output)], (path, done.stdout, done.stderr)


def test_a_symlinked_folder_below_the_root_refuses_the_change_and_is_named(tmp_path, tree):
    outside = tmp_path / "cron.d"
    outside.mkdir()
    (tree / "assets").symlink_to(outside)
    plan = Plan(
        "write",
        changes=(
            WriteFile(str(tree / "main.conf"), b"fixed\n", root=str(tree)),
            WriteFile(str(tree / "assets" / "site.css"), b"* * * * * root id\n", root=str(tree)),
        ),
    )
    t = tx(tmp_path, plan)
    prepared, applied, _ = t.prepare_and_apply()
    assert not prepared.ok and applied is None
    assert prepared.failed_phase.startswith(f"{tree}/assets is a symlink below its change's root")
    assert list(outside.iterdir()) == []  # nothing written, nothing backed up through it
    assert (tree / "main.conf").read_text() == "main ok\n"
    assert not list((tmp_path / "bk").rglob("site.css"))
    current = current_contents(LocalShell(), plan.changes, None)
    assert current[str(tree / "assets" / "site.css")] == (
        f"(not read: {tree}/assets is a symlink below {tree})\n"
    )


def test_a_folder_swapped_for_a_symlink_after_the_backup_is_not_restored_through(tmp_path, tree):
    outside = tmp_path / "elsewhere"
    (outside / "conf.d").mkdir(parents=True)
    (outside / "conf.d" / "broken.conf").write_text("victim\n")
    path = tree / "conf.d" / "broken.conf"
    plan = Plan("fix", changes=(WriteFile(str(path), b"fixed\n", root=str(tree)),))
    t = tx(tmp_path, plan)
    assert applied(t).ok
    shutil.rmtree(tree / "conf.d")
    (tree / "conf.d").symlink_to(outside / "conf.d")
    restored = t.restore()
    assert not restored.ok and restored.links == [f"{tree}/conf.d"]
    assert (outside / "conf.d" / "broken.conf").read_text() == "victim\n"


def test_a_change_outside_its_root_is_refused(tmp_path, tree):
    plan = Plan("write", changes=(WriteFile(str(tmp_path / "x"), b"x", root=str(tree)),))
    prepared, done, _ = tx(tmp_path, plan).prepare_and_apply()
    assert (
        not prepared.ok and done is None and prepared.failed_phase.startswith(f"{tmp_path}/x is ")
    )
    assert not (tmp_path / "x").exists()
