# fleet-script: fix.cert_unpin
# fleet-version: 1
# Unpins the RDP-Tcp listener certificate so Windows selects one from the "Server authentication
# certificate template" policy again: with that policy, "Automatic certificate selection only
# occurs when a specific certificate has not been selected", and of the certificates from the
# template "the certificate that will expire latest and that matches the current name of the RD
# Session Host server will be selected" (policy CSP ADMX_TerminalServer/
# TS_CERTIFICATE_TEMPLATE_POLICY, MicrosoftDocs/windows-itpro-docs
# windows/client-management/mdm/policy-csp-admx-terminalserver.md). The selection is the RDP-Tcp
# value SSLCertificateSHA1Hash: Win32_TSGeneralSetting keeps its values under
# HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations (its ClassContext,
# MicrosoftDocs/win32 desktop-src/TermServ/win32-tsgeneralsetting.md; SSLCertificateSHA1HashType
# 2 "Default group policy enforced", 3 "Custom"). The value is deleted, then SessionEnv and
# TermService restart (disruptive) and select. Refuses while the policy is not set (Windows
# would issue a self-signed certificate instead: fix.cert_regenerate's job). Acts only while
# `thumbprint` is still bound (or, with none, while nothing is), so a second run changes nothing.
# Answers the binding, before/after.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$thumb = ''
if ($p.thumbprint) { $thumb = ([string]$p.thumbprint).ToUpperInvariant() }
$filter = "TerminalName='RDP-Tcp'"
$rdpTcp = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
$policyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services'

function Get-Bound {
    $ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
    return "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
}

$template = $null
if (Test-Path -LiteralPath $policyKey) { $template = (Get-Item -LiteralPath $policyKey).GetValue('CertTemplateName') }
if (-not $template) { throw 'the "Server authentication certificate template" policy (CertTemplateName) is not set: unpinning would give the listener a self-signed certificate' }

$before = Get-Bound
if ($before -eq $thumb) {
    # The pinned value goes when it is there; a failure to delete it stops the script.
    if ((Get-Item -LiteralPath $rdpTcp).GetValueNames() -contains 'SSLCertificateSHA1Hash') {
        Remove-ItemProperty -LiteralPath $rdpTcp -Name SSLCertificateSHA1Hash
    }
    Restart-Service -Name SessionEnv -Force
    Restart-Service -Name TermService -Force
    # The selection happens as the services come up, not necessarily before Restart-Service
    # returns: wait (bounded) for the binding to move off the old one.
    for ($try = 0; $try -lt 15 -and (Get-Bound) -eq $before; $try++) { Start-Sleep -Seconds 2 }
}
$after = Get-Bound
$change = @{ target = 'Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash'; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
