"""Stage `labels`: render the Label Studio labeling config and the annotator guidelines
from configs/labels.yaml, the single source of truth for the tasks.

Control names are fixed in ``pipeline.labelstudio.prediction`` and shared with the annotation
reader, the Label Studio client and the ML backend: text ``text``, frames ``frames``, stance ``stance``,
flags ``flags``. Choice values are the display names; readers accept keys too.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from pipeline.fsutil import write_text
from pipeline.labelstudio.prediction import FLAGS_NAME, FRAMES_NAME, STANCE_NAME, TEXT_NAME
from pipeline.schema import LabelSchema, load_label_schema

log = logging.getLogger(__name__)

def label_config_xml(schema: LabelSchema) -> str:
    """The Label Studio labeling config: passage text, multi-choice frames, single-choice stance, flags."""

    def choices(name: str, choice: str, labels, extra: str = "") -> list[str]:
        lines = [f'  <Header value={quoteattr(_header(name, schema))}/>',
                 f'  <Choices name="{name}" toName="{TEXT_NAME}" choice="{choice}" showInline="false"{extra}>']
        lines += [f"    <Choice value={quoteattr(label.display)} hint={quoteattr(label.definition)}/>" for label in labels]
        lines.append("  </Choices>")
        return lines

    lines = [
        f"<!-- Generated from configs/labels.yaml (schema_version {schema.schema_version}) by `framing labels`. Do not edit. -->",
        "<View>",
        '  <Header value="Passage"/>',
        f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}" granularity="word"/>',
        *choices(FRAMES_NAME, "multiple", schema.frames),
        *choices(STANCE_NAME, "single-radio", schema.stance, ''),
        *choices(FLAGS_NAME, "multiple", schema.flags),
        "</View>",
    ]
    return "\n".join(lines) + "\n"


def adjudication_config_xml(schema: LabelSchema) -> str:
    """The adjudication project's labeling config: the annotation config plus what each annotator chose."""
    passage = f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}" granularity="word"/>\n'
    shown = passage + ('  <Header value="What the annotators chose (decide; your labels replace theirs)"/>\n'
                       '  <Text name="judgements" value="$judgements"/>\n')
    config = label_config_xml(schema)
    assert passage in config
    return config.replace(passage, shown, 1)


def _header(name: str, schema: LabelSchema) -> str:
    return {
        FRAMES_NAME: "Frames (choose every frame the passage uses; none is fine)",
        STANCE_NAME: f"Stance toward {schema.target}",
        FLAGS_NAME: "Flags",
    }[name]


def guidelines_markdown(schema: LabelSchema) -> str:
    """Annotator guidelines: the task, each label's definition, cues and worked examples."""
    out = [
        "<!-- Generated from configs/labels.yaml by `framing labels`. Edit the YAML, not this file. -->",
        "# Annotation guidelines",
        "",
        f"Each task is one passage (a paragraph) from a news or analysis article about {schema.target}.",
        "Read the whole passage, then:",
        "",
        "1. **Frames** (multi-label): tick every frame the passage *uses* to explain the relationship. "
        "A passage may use several frames, or none.",
        "2. **Stance** (exactly one): how the passage portrays the rapprochement.",
        "3. **Off-topic / unusable**: tick it instead when the passage is not about the relationship or is "
        "page boilerplate; leave frames and stance empty then.",
        "",
        "Judge the author's framing, not the events: a quoted endorsement reported flatly is *supportive* "
        "framing of the parties' view only if the author adds no critical colouring. Cue words are hints, "
        "not rules: a cue inside a negation (\"far from a strategic partnership\") does not make the frame.",
        "",
    ]
    if schema.hard_cases:
        out += ["## Hard cases", "", "How the definitions below apply where annotators found them open:", ""]
        out += [f"{i}. {case}" for i, case in enumerate(schema.hard_cases, 1)]
        out.append("")
    for title, labels in (("Frames", schema.frames), ("Stance", schema.stance), ("Flags", schema.flags)):
        out += [f"## {title}", ""]
        for label in labels:
            out += [f"### {label.display} (`{label.key}`)", "", label.definition, ""]
            if label.cues:
                out += ["Cues: " + ", ".join(f"*{c}*" for c in label.cues), ""]
            if label.examples:
                out += ["Worked examples from the seed documents:", ""]
                out += [f"> {escape(example)}" for example in label.examples]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def run(labels: str | Path, label_config: str | Path, guidelines: str | Path) -> None:
    """Render ``label_config`` (XML) and ``guidelines`` (Markdown) from the ``labels`` schema."""
    schema = load_label_schema(labels)
    write_text(label_config, label_config_xml(schema))
    write_text(guidelines, guidelines_markdown(schema))
    log.info("labels: wrote %s and %s", label_config, guidelines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="framing labels", description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="configs/labels.yaml")
    parser.add_argument("--label-config", default="labels/label_config.xml")
    parser.add_argument("--guidelines", default="labels/GUIDELINES.md")
    args = parser.parse_args(argv)
    run(args.labels, args.label_config, args.guidelines)
