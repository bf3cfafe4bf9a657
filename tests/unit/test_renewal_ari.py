"""When a run asks the CA for a certificate's ARI window: not before the CA's Retry-After."""
import datetime as dt
from dataclasses import replace

from acme_flow import pki
from acme_flow.models import RenewalWindow
from fakes import NOW, FakeCa, make_adapters, make_config, make_renewer
from test_planning import stored

HOUR = dt.timedelta(hours=1)


def survey():
    """The Survey of a real Renewer over fakes; its CA always offers a window in 10 to 11 days."""
    ca = FakeCa()
    ca.window, ca.retry_after = (NOW + 10 * 24 * HOUR, NOW + 11 * 24 * HOUR), 6 * 3600
    return make_renewer(make_config(), make_adapters(ca=ca)).survey, ca


def current(**kw):
    """A stored certificate with the CertID of a real leaf in its pointer (ARI asks by CertID)."""
    cert = FakeCa().mini.leaf(("example.com", "*.example.com"))
    return replace(stored(**kw), material=None, ari_cert_id=pki.ari_cert_id(cert.cert_pem))


def test_the_window_is_not_asked_for_again_before_retry_after():
    s, ca = survey()
    kept = RenewalWindow(NOW, NOW + HOUR, NOW + HOUR / 2, next_check=NOW + HOUR)
    assert s.window(replace(current(issued=NOW - 10 * 24 * HOUR), window=kept), NOW) == kept
    assert ca.ari_asked == []


def test_after_retry_after_the_window_is_fetched_and_a_time_drawn_in_it():
    s, ca = survey()
    old = RenewalWindow(NOW, NOW + HOUR, NOW + HOUR / 2, next_check=NOW - HOUR)
    window = s.window(replace(current(issued=NOW - 10 * 24 * HOUR), window=old), NOW)
    assert len(ca.ari_asked) == 1
    assert window.start == NOW + 10 * 24 * HOUR and window.chosen == NOW + 10.5 * 24 * HOUR
    assert window.next_check == NOW + 6 * HOUR


def test_the_chosen_time_is_kept_while_the_window_stays_the_same():
    s, ca = survey()
    same = RenewalWindow(NOW + 10 * 24 * HOUR, NOW + 11 * 24 * HOUR, NOW + 10.1 * 24 * HOUR, next_check=NOW - HOUR)
    window = s.window(replace(current(issued=NOW - 10 * 24 * HOUR), window=same), NOW)
    assert window.chosen == same.chosen and window.next_check == NOW + 6 * HOUR


def test_an_expired_foreign_or_revoked_certificate_is_never_asked_about():
    s, ca = survey()
    assert s.window(current(issued=NOW - 100 * 24 * HOUR), NOW) is None
    assert s.window(current(directory="https://other.test/dir"), NOW) is None
    assert s.window(current(revoked="keyCompromise"), NOW) is None
    assert ca.ari_asked == [] and ca.made == 0, "no CA client is even made"
