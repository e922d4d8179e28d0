"""Keep the zh_CN message catalogs in step with the English sources.

    python tools/catalogs.py update POT_DIR LOCALE_DIR
    python tools/catalogs.py check POT_DIR LOCALE_DIR

``POT_DIR`` is the output of ``sphinx-build -b gettext``; ``LOCALE_DIR`` holds
``LC_MESSAGES/**.po``. ``update`` merges new messages into the catalogs and drops
obsolete ones; both commands then report translated/total and fail (exit 1) if a
catalog is stale, or a message is untranslated or fuzzy.
"""

import argparse
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

# The catalog of the theme's and our templates' strings. Besides what is extracted
# from our templates, it keeps by hand the few strings that the theme's own zh
# catalog lacks, so it may hold more messages than its template.
MAY_HOLD_MORE = {"sphinx.po"}


def _read(path, **kwargs):
    with path.open("rb") as f:
        return read_po(f, **kwargs)


def _write(path, catalog):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, ignore_obsolete=True)


def _ids(catalog):
    return {(m.context, m.id) for m in catalog if m.id}


def update(pot_dir, messages_dir):
    for pot in sorted(pot_dir.rglob("*.pot")):
        po = messages_dir / pot.relative_to(pot_dir).with_suffix(".po")
        template = _read(pot)
        if not po.exists():
            catalog = template
            catalog.locale = "zh_CN"
        elif po.name in MAY_HOLD_MORE:
            catalog = _read(po, locale="zh_CN")
            for message in template:
                if message.id and (message.context, message.id) not in _ids(catalog):
                    catalog.add(message.id, context=message.context)
        else:
            catalog = _read(po, locale="zh_CN")
            catalog.update(template)
        catalog.fuzzy = False  # the header: the catalog is maintained, not a draft
        _write(po, catalog)
    for po in sorted(messages_dir.rglob("*.po")):
        pot = pot_dir / po.relative_to(messages_dir).with_suffix(".pot")
        if not pot.exists():
            po.unlink()
            print(f"removed {po}: its page is gone")


def check(pot_dir, messages_dir):
    problems = []
    translated = total = 0
    for pot in sorted(pot_dir.rglob("*.pot")):
        rel = pot.relative_to(pot_dir).with_suffix(".po")
        po = messages_dir / rel
        if not po.exists():
            problems.append(f"{rel}: missing")
            continue
        wanted, have = _ids(_read(pot)), _ids(_read(po))
        new = len(wanted - have)
        obsolete = 0 if po.name in MAY_HOLD_MORE else len(have - wanted)
        if new or obsolete:
            problems.append(f"{rel}: stale ({new} new, {obsolete} obsolete)")
    for po in sorted(messages_dir.rglob("*.po")):
        rel = po.relative_to(messages_dir)
        if not (pot_dir / rel).with_suffix(".pot").exists():
            problems.append(f"{rel}: no such page")
        for message in _read(po):
            if not message.id:
                continue
            total += 1
            if message.fuzzy:
                problems.append(f"{rel}: fuzzy: {str(message.id)[:70]!r}")
            elif not message.string:
                problems.append(f"{rel}: untranslated: {str(message.id)[:70]!r}")
            else:
                translated += 1
    print("\n".join(problems))
    print(f"zh_CN: {translated}/{total} messages translated")
    return not problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["update", "check"])
    parser.add_argument("pot_dir", type=Path)
    parser.add_argument("locale_dir", type=Path)
    args = parser.parse_args()
    messages_dir = args.locale_dir / "LC_MESSAGES"
    if args.command == "update":
        update(args.pot_dir, messages_dir)
    sys.exit(0 if check(args.pot_dir, messages_dir) else 1)


if __name__ == "__main__":
    main()
