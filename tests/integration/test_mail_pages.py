"""The mails of real runs of the embedded stack, as a person opens them in the mail catcher
with a real browser: the failure mail says why first, the success mail shows the metrics and
the confusion grid, both link to the run's monitor page and to Airflow."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from embedded.stack import REPO_ROOT
from testkit.browser import Browser
from testkit.runs import TRAINING, broken_csv_run, finished_run

pytestmark = pytest.mark.integration

SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    opened = Browser()
    yield opened
    opened.close()


def links_of(stack, run_id: str) -> tuple[str, str]:
    quoted = quote(run_id, safe="")
    return f"{stack.flask_url}/runs/{quoted}", f"{stack.api_url}/dags/{TRAINING}/runs/{quoted}"


def open_in_catcher(stack, browser: Browser, message: dict, shot: str) -> None:
    """From the list to the message's page; nothing refused, nothing failing."""
    assert browser.open(f"{stack.mail_url}/") == []
    hrefs = browser.evaluate("[...document.querySelectorAll('td a')].map(a => a.href)")
    page = f"{stack.mail_url}/view/{message['ID']}"
    assert page in hrefs
    assert browser.open(page) == []
    frame = browser.evaluate(
        "(f => [f.getAttribute('sandbox'), f.getAttribute('src')])"
        "(document.querySelector('iframe'))"
    )
    assert frame == ["allow-popups allow-popups-to-escape-sandbox", f"/view/{message['ID']}.html"]
    text = browser.evaluate("(p => p && p.textContent)(document.querySelector('pre.text'))")
    assert message["Text"] and text == message["Text"]  # every mail has its text part
    browser.screenshot(SHOTS / f"{shot}.png")


def test_failure_mail_says_why_first(embedded_stack, mailbox, browser) -> None:
    run = broken_csv_run(embedded_stack, "missing_values.csv")
    mail = mailbox.wait_for(
        lambda m: "FAILED: run" in m["Subject"] and run["dag_run_id"] in m["Subject"]
    )

    html = mail["HTML"]
    reason = html.index("column &#39;Area Income&#39;")
    assert "missing_values.csv" in html and "lines 5, 9, 12" in html
    assert html.index("load_data") < reason < html.index("This run on the monitor")
    monitor, airflow = links_of(embedded_stack, run["dag_run_id"])
    assert f'href="{monitor}"' in html and f'href="{airflow}"' in html
    open_in_catcher(embedded_stack, browser, mail, "mail-failure")


def test_success_mail_shows_metrics_and_the_confusion_grid(
    embedded_stack, mailbox, browser
) -> None:
    run = finished_run(embedded_stack)
    mail = mailbox.wait_for(
        lambda m: "SUCCESS: run" in m["Subject"] and run["dag_run_id"] in m["Subject"]
    )

    html = mail["HTML"]
    assert "Accuracy" in html and "ROC AUC" in html and "Confusion matrix" in html
    assert html.count(" of actual ") == 4
    monitor, airflow = links_of(embedded_stack, run["dag_run_id"])
    assert f'href="{monitor}"' in html and f'href="{airflow}"' in html
    open_in_catcher(embedded_stack, browser, mail, "mail-success")
