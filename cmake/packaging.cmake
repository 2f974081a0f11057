# Installation beyond the binary (src/CMakeLists.txt installs it and its links) and the Debian
# package (`cpack -G DEB`). docs/operations.md says where everything goes and why.
#
#   <prefix>/lib/systemd/system/mailhop.service   the unit, ExecStart pointing at the installed binary
#   <prefix>/lib/systemd/system/mailhop.socket    optional socket activation (not enabled by anything)
#   <sysconfdir>/mailhop/mailhop.yaml            config/mailhop.yaml with spool.path /var/lib/mailhop
#                                                (the unit's StateDirectory); a conffile in the .deb
#   <prefix>/share/doc/mailhop/                   README.md, docs/*.md
#
# For the package, configure with -DCMAKE_INSTALL_PREFIX=/usr: sysconfdir is then /etc.
include(GNUInstallDirs)

set(MAILHOP_SPOOL_DIR "/var/lib/mailhop" CACHE STRING "spool.path in the installed configuration")
set(MAILHOP_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING "where the unit goes (relative: below the prefix)")

set(MAILHOP_SBINDIR "${CMAKE_INSTALL_FULL_SBINDIR}")
set(MAILHOP_SYSCONFDIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}")
set(MAILHOP_DOCDIR "${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/mailhop")
configure_file(${PROJECT_SOURCE_DIR}/systemd/mailhop.service.in ${PROJECT_BINARY_DIR}/packaging/mailhop.service @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/systemd/mailhop.socket.in ${PROJECT_BINARY_DIR}/packaging/mailhop.socket @ONLY)

# The installed configuration: the documented default with the spool where the unit keeps state.
file(READ ${PROJECT_SOURCE_DIR}/config/mailhop.yaml mailhop_yaml)
string(REGEX REPLACE "\n  path: [^\n]*" "\n  path: ${MAILHOP_SPOOL_DIR}" mailhop_yaml "${mailhop_yaml}")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/mailhop.yaml "${mailhop_yaml}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/config/mailhop.yaml)

install(FILES ${PROJECT_BINARY_DIR}/packaging/mailhop.service ${PROJECT_BINARY_DIR}/packaging/mailhop.socket
        DESTINATION ${MAILHOP_SYSTEMD_UNITDIR})
install(FILES ${PROJECT_BINARY_DIR}/packaging/mailhop.yaml DESTINATION ${MAILHOP_SYSCONFDIR}/mailhop
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
file(GLOB mailhop_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${mailhop_docs} DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/mailhop)

# The Debian package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mailhop)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "store-and-forward SMTP relay (smarthost client with TLS and AUTH)")
set(CPACK_PACKAGE_CONTACT "mailhop maintainers <mailhop@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_SET_DESTDIR ON)  # /etc/mailhop is outside the prefix
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # libspdlog1.10, libyaml-cpp0.7, libssl3, … from the binary
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
# It installs /usr/sbin/sendmail, as every Debian MTA does: one at a time.
set(CPACK_DEBIAN_PACKAGE_PROVIDES "mail-transport-agent")
set(CPACK_DEBIAN_PACKAGE_CONFLICTS "mail-transport-agent")
set(CPACK_DEBIAN_PACKAGE_REPLACES "mail-transport-agent")
configure_file(${PROJECT_SOURCE_DIR}/cmake/debian/conffiles.in ${PROJECT_BINARY_DIR}/packaging/conffiles @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/conffiles
    ${PROJECT_SOURCE_DIR}/cmake/debian/postinst
    ${PROJECT_SOURCE_DIR}/cmake/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
