#!/usr/bin/env python3
"""Renders the golden outputs of shared/jinja's template tests with Python's
Jinja2, configured as transformers' apply_chat_template configures it
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
its tojson, raise_exception and strftime_now). Needs jinja2 (pip or Debian
python3-jinja2). Also refreshes testdata/snippets.json (small templates and their renders).
Run from the repository root:

    python3 tools/chat-template-golden/golden.py
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "jinja", "testdata")


def env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime(2025, 4, 1, 12, 0, 0).strftime(fmt)

    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    e.filters["tojson"] = tojson
    e.globals["raise_exception"] = raise_exception
    e.globals["strftime_now"] = strftime_now
    return e


def main():
    with open(os.path.join(ROOT, "cases.json")) as f:
        spec = json.load(f)
    out_dir = os.path.join(ROOT, "golden")
    os.makedirs(out_dir, exist_ok=True)
    e = env()
    for name, toks in spec["tokens"].items():
        with open(os.path.join(ROOT, "templates", name + ".jinja")) as f:
            tmpl = e.from_string(f.read())
        for case in spec["cases"]:
            ctx = dict(toks)
            ctx["messages"] = case["messages"]
            ctx["add_generation_prompt"] = case["add_generation_prompt"]
            if "tools" in case:
                ctx["tools"] = case["tools"]
            ctx.update(case.get("vars", {}))
            try:
                text = tmpl.render(**ctx)
            except Exception as ex:  # the golden records the error message
                text = "ERROR: " + str(ex)
            with open(os.path.join(out_dir, f"{name}.{case['name']}.txt"), "w") as f:
                f.write(text)
    print("wrote", len(os.listdir(out_dir)), "goldens", file=sys.stderr)
    # Small templates for the engine's unit tests: want (or error) from Jinja2.
    path = os.path.join(ROOT, "snippets.json")
    with open(path) as f:
        snippets = json.load(f)
    for sn in snippets:
        sn.pop("want", None)
        sn.pop("error", None)
        try:
            sn["want"] = e.from_string(sn["src"]).render(**sn["vars"])
        except Exception as ex:
            sn["error"] = type(ex).__name__ + ": " + str(ex)
    with open(path, "w") as f:
        json.dump(snippets, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
