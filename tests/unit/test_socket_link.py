"""S6: the CLI trusts the demo's socket link in /tmp only when it is this user's own
(another local user could plant a link to a fake daemon and receive a password hash)."""
from __future__ import annotations

import os
import socket

import pytest

from appliance.core import paths

OTHER_UID = 54321


@pytest.fixture
def demo(tmp_path):
    """A demo-like socket in a private folder, and where its link goes."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(folder / "control.sock"))
    runtime = tmp_path / "run"
    runtime.mkdir()
    environ = {"XDG_RUNTIME_DIR": str(runtime)}
    yield folder / "control.sock", paths.demo_socket_link(environ), environ
    server.close()


def test_a_link_made_by_this_user_to_its_own_socket_is_used(demo):
    sock, link, environ = demo
    link.symlink_to(sock)
    assert paths.socket_path(None, environ) == sock.resolve()


def test_a_link_planted_by_another_user_is_refused(demo):
    sock, link, environ = demo
    link.symlink_to(sock)
    os.lchown(link, OTHER_UID, OTHER_UID)
    with pytest.raises(paths.UntrustedSocket, match="not a link made by your demo"):
        paths.socket_path(None, environ)


def test_a_link_to_another_users_socket_is_refused(demo):
    sock, link, environ = demo
    link.symlink_to(sock)
    os.chown(sock, OTHER_UID, OTHER_UID)
    with pytest.raises(paths.UntrustedSocket, match="not a socket of yours"):
        paths.socket_path(None, environ)


def test_a_socket_in_a_folder_others_may_write_is_refused(demo):
    sock, link, environ = demo
    link.symlink_to(sock)
    sock.parent.chmod(0o777)
    with pytest.raises(paths.UntrustedSocket, match="others may write"):
        paths.socket_path(None, environ)


def test_a_plain_file_in_place_of_the_link_is_refused(demo):
    _, link, environ = demo
    link.write_text("")
    with pytest.raises(paths.UntrustedSocket):
        paths.socket_path(None, environ)


def test_an_explicit_data_folder_is_not_second_guessed(demo, tmp_path):
    _, link, environ = demo
    assert paths.socket_path(str(tmp_path / "d"), environ) == tmp_path / "d" / paths.SOCKET_NAME
