from label_studio_sdk.label_interface import LabelInterface

from pipeline import labels
from pipeline.labels import FLAGS_NAME, FRAMES_NAME, STANCE_NAME, TEXT_NAME


def test_label_config_parses_in_label_studio_and_round_trips_the_schema(schema):
    interface = LabelInterface(labels.label_config_xml(schema))
    controls = {c.name: c for c in interface.controls}
    assert set(controls) == {FRAMES_NAME, STANCE_NAME, FLAGS_NAME}
    assert list(controls[FRAMES_NAME].labels) == [l.display for l in schema.frames]
    assert list(controls[STANCE_NAME].labels) == [l.display for l in schema.stance]
    assert list(controls[FLAGS_NAME].labels) == [l.display for l in schema.flags]
    assert all(c.to_name == [TEXT_NAME] for c in controls.values())
    # display names map back to the schema's keys
    assert [schema.frame_key(v) for v in controls[FRAMES_NAME].labels] == schema.frame_names
    assert [schema.stance_key(v) for v in controls[STANCE_NAME].labels] == schema.stance_names


def test_label_studio_accepts_an_annotation_built_from_the_schema(schema):
    from pipeline.annotations import choices_results

    interface = LabelInterface(labels.label_config_xml(schema))
    results = choices_results(schema, ["transactional", "strategic_partnership"], "critical")
    assert interface.validate_annotation({"result": results})


def test_committed_generated_files_are_up_to_date(root, schema):
    assert (root / "labels/label_config.xml").read_text(encoding="utf-8") == labels.label_config_xml(schema)
    assert (root / "labels/GUIDELINES.md").read_text(encoding="utf-8") == labels.guidelines_markdown(schema)


def test_guidelines_cover_every_label_with_definition_and_examples(schema):
    text = labels.guidelines_markdown(schema)
    for label in (*schema.frames, *schema.stance):
        assert f"`{label.key}`" in text and label.definition in text
        assert label.examples, f"{label.key} has no worked example"
