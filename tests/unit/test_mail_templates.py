"""The pipeline's mails for every model kind, sent through the SMTP provider's hook to a real
SMTP server (the embedded mail catcher) and read back as a mail client gets them: a text part
and an HTML part, a Message-ID, a short subject naming the model, and the result drawn by
the macros the monitor uses (labels from the result, no grid for regression)."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from urllib.parse import quote

import pytest
import requests

from adclick_airflow import mail, notify
from adclick_contract import TRAINING_DAG_ID
from embedded.mailcatcher import MailCatcher
from testkit.mailbox import Mailbox
from testkit.results import kept_champion, result

LINKS = mail.Links("http://monitor.test/runs/r1", "http://airflow.test/dags/d/runs/r1")
RUN_ID = "manual__2026-12-06T10:15:00.123456+00:00"


def delivered(catcher: MailCatcher, message: mail.Mail) -> EmailMessage:
    """Send ``message`` through the real SMTP server; the raw mail it stored, parsed."""
    notify.send(message, to=["team@models.test"])
    box = Mailbox(f"http://127.0.0.1:{catcher.http_port}")
    caught = box.wait_for(lambda m: m["Subject"] == message.subject, timeout=10)
    raw = requests.get(f"{box.base_url}/api/v1/message/{caught['ID']}/raw", timeout=5)
    return email.message_from_bytes(raw.content, policy=policy.default)


def column_heads(html: str) -> list[str]:
    """The confusion grid's predicted-class headings: the only labels it shows."""
    return re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', html)[1:]  # after "Predicted"


def bodies(parsed: EmailMessage) -> tuple[str, str]:
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None, parsed.as_string()[:500]
    return text.get_content(), html.get_content()


def test_multiclass_report_names_the_model_and_labels_every_class(smtp_catcher) -> None:
    report = mail.run_report("iris_training", RUN_ID, result("multiclass"), LINKS)
    parsed = delivered(smtp_catcher, report)

    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith("@adclick.local>")
    assert parsed.get_content_type() == "multipart/alternative"
    subject = parsed["Subject"]
    assert subject.startswith("[iris] ") and "f1_macro 0.9327" in subject and len(subject) < 100
    assert "Ad-click" not in subject
    text, html = bodies(parsed)
    for body in (text, html):
        assert "Macro F1" in body and "0.9327" in body and "Accuracy" in body
        assert "Iris versicolor" in body and "Iris virginica" in body
        assert "Gate: Macro F1 &gt;= 0.85" in body or "Gate: Macro F1 >= 0.85" in body
    assert html.count(" of actual ") == 9  # a 3 x 3 grid
    assert html.count('data-count="') == 9
    assert column_heads(html) == ["Iris setosa", "Iris versicolor", "Iris virginica"]


def test_regression_report_shows_errors_and_no_grid(smtp_catcher) -> None:
    report = mail.run_report("diabetes_training", RUN_ID, result("regression"), LINKS)
    parsed = delivered(smtp_catcher, report)

    assert parsed["Subject"].startswith("[diabetes] ") and "rmse 53.8534" in parsed["Subject"]
    text, html = bodies(parsed)
    for body in (text, html):
        assert "R²" in body and "RMSE" in body and "MAE" in body and "53.8534" in body
        assert "Confusion" not in body and "Accuracy" not in body
    assert "Gate: RMSE <= 60 (got 53.8534): passed" in text


def test_binary_report_labels_the_grid_from_the_result(smtp_catcher) -> None:
    report = mail.run_report("cancer_training", RUN_ID, result("binary"), LINKS)
    parsed = delivered(smtp_catcher, report)

    text, html = bodies(parsed)
    assert "not promoted" in parsed["Subject"]
    assert html.count(" of actual ") == 4
    assert " of actual malignant" in html and column_heads(html) == ["benign", "malignant"]
    assert "Gate: Accuracy >= 0.9 (got 0.8860): not passed" in text
    assert "ROC AUC" in text and "malignant" in text


@pytest.mark.parametrize(
    "message",
    [
        mail.task_failed(
            "iris_training",
            RUN_ID,
            "load_data",
            1,
            "CsvError: /opt/airflow/data/deep/folder/iris-with-a-rather-long-name.csv: "
            "column 'petal width' is not numeric at lines 5, 9, 12, 40, 41, 42, 43, 44, 45",
            LINKS,
        ),
        mail.run_failed("iris_training", RUN_ID, "fit_model", "/srv/x/y.py failed " * 9, LINKS),
        mail.flask_down("http://127.0.0.1:5000/health", "2026-12-06T10:00:00", "refused", "w", "l"),
        mail.flask_back("http://127.0.0.1:5000/health", "2026-12-06T10:00:00", "10:05"),
        mail.flask_flapping("http://127.0.0.1:5000/health", 4, 600.0, "2026-12-06T10:00:00"),
        mail.run_succeeded("diabetes_training", RUN_ID, result("regression"), LINKS),
    ],
    ids=["task_failed", "run_failed", "flask_down", "flask_back", "flapping", "run_succeeded"],
)
def test_every_mail_has_a_text_part_a_message_id_and_a_short_subject(smtp_catcher, message) -> None:
    parsed = delivered(smtp_catcher, message)

    assert parsed["Message-ID"]
    subject = parsed["Subject"]
    assert len(subject) < 100 and "/opt/" not in subject and "/srv/" not in subject, subject
    text, html = bodies(parsed)
    assert text.strip() and "<" not in text.splitlines()[0]
    assert html.lstrip().startswith("<!doctype html>")


def test_a_run_report_goes_out_with_a_text_part_and_a_message_id(smtp_catcher) -> None:
    message = mail.run_report("iris_training", RUN_ID, result("multiclass"), LINKS)
    notify.send(message, to=["team@models.test"])
    subject = message.subject

    box = Mailbox(f"http://127.0.0.1:{smtp_catcher.http_port}")
    caught = box.wait_for(lambda m: m["Subject"] == subject, timeout=10)
    assert "Macro F1" in caught["Text"] and "<" not in caught["Text"]
    assert caught["MessageID"] and "Iris virginica" in caught["HTML"]


def test_failure_subject_keeps_the_file_name_not_its_path() -> None:
    message = mail.task_failed(
        "iris_training", "r1", "load_data", 1, "CsvError: /opt/airflow/data/iris.csv: empty", LINKS
    )

    assert message.subject == "[iris_training] FAILED at load_data: CsvError: iris.csv: empty"
    assert "/opt/airflow/data/iris.csv" in message.text
    assert "/opt/airflow/data/iris.csv" in message.html


def test_html_escapes_what_the_run_sends() -> None:
    script = "<script>alert(1)</script>"
    message = mail.run_report(
        "iris_training", script, result("multiclass", class_names=[script, "b", "c"]), LINKS
    )

    assert script not in message.html and "&lt;script&gt;" in message.html
    assert script in message.text  # plain text is not HTML: shown as it is


def test_a_models_mails_link_to_its_own_monitor_pages() -> None:
    quoted = quote(RUN_ID, safe="")

    assert notify.links("iris_training", RUN_ID).monitor.endswith(f"/models/iris/runs/{quoted}")
    default = notify.links(TRAINING_DAG_ID, RUN_ID).monitor
    assert default.endswith(f"/runs/{quoted}") and "/models/" not in default


def test_a_report_that_kept_the_champion_says_why_with_both_scores(smtp_catcher) -> None:
    report = mail.run_report("diabetes_training", RUN_ID, kept_champion("regression"), LINKS)
    parsed = delivered(smtp_catcher, report)

    assert parsed["Subject"].endswith("not promoted")
    text, html = bodies(parsed)
    for body in (text, html):
        assert "Against the champion" in body
        assert "kept champion v3: rmse 48.4681 against 53.8534" in body


def test_the_report_names_the_model_file_relative_to_the_model_root(
    smtp_catcher, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("ADCLICK_MODEL_DIR", str(tmp_path / "model"))
    stored = tmp_path / "model" / "iris" / "versions" / "20261206T101500Z-1a2b3c" / "model.skops"
    report = mail.run_report(
        "iris_training", RUN_ID, result("multiclass", model_path=str(stored)), LINKS
    )
    text, html = bodies(delivered(smtp_catcher, report))

    for body in (text, html):
        assert "iris/versions/20261206T101500Z-1a2b3c/model.skops" in body
        assert str(tmp_path) not in body
