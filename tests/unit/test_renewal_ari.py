"""When the Renewer asks the CA for a certificate's ARI window: not before the CA's Retry-After."""
import datetime as dt
from dataclasses import replace

from acme_flow.models import AcmeSettings, Config, RenewalWindow
from acme_flow.ports import RenewalInfo
from acme_flow.renewal import Renewer
from fakes import NOW, FakeClock
from test_planning import DIRECTORY, stored

HOUR = dt.timedelta(hours=1)


class CountingCA:
    def __init__(self):
        self.asked = 0

    def renewal_info(self, cert_pem):
        self.asked += 1
        return RenewalInfo(start=NOW + 10 * 24 * HOUR, end=NOW + 11 * 24 * HOUR, retry_after=6 * 3600)


def renewer(ca):
    config = Config(acme=AcmeSettings(directory=DIRECTORY), certificates=())
    return Renewer(config=config, state=None, ca=lambda: ca, dns=None, propagation=None, importer=None,
                   cloudfront=None, exporter=None, notifier=None, clock=FakeClock(), random_fraction=lambda: 0.5)


def test_the_window_is_not_asked_for_again_before_retry_after():
    ca = CountingCA()
    kept = RenewalWindow(NOW, NOW + HOUR, NOW + HOUR / 2, next_check=NOW + HOUR)
    current = stored(issued=NOW - 10 * 24 * HOUR)
    assert renewer(ca)._window(replace(current, window=kept), NOW) == kept
    assert ca.asked == 0


def test_after_retry_after_the_window_is_fetched_and_a_time_drawn_in_it():
    ca = CountingCA()
    old = RenewalWindow(NOW, NOW + HOUR, NOW + HOUR / 2, next_check=NOW - HOUR)
    current = stored(issued=NOW - 10 * 24 * HOUR)
    window = renewer(ca)._window(replace(current, window=old), NOW)
    assert ca.asked == 1
    assert window.start == NOW + 10 * 24 * HOUR and window.chosen == NOW + 10.5 * 24 * HOUR
    assert window.next_check == NOW + 6 * HOUR


def test_an_expired_or_foreign_certificate_is_never_asked_about():
    ca = CountingCA()
    expired = stored(issued=NOW - 100 * 24 * HOUR)
    foreign = stored(directory="https://other.test/dir")
    assert renewer(ca)._window(expired, NOW) is None
    assert renewer(ca)._window(foreign, NOW) is None
    assert ca.asked == 0
