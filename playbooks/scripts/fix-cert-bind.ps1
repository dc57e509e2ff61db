# fleet-script: fix.cert_bind
# fleet-version: 2
# Binds a certificate (with its private key, from LocalMachine\My or \Remote Desktop) to the
# RDP-Tcp listener (Win32_TSGeneralSetting.SSLCertificateSHA1Hash, KB 3042780 "Remote Desktop
# listener certificate configurations":
# https://learn.microsoft.com/troubleshoot/windows-server/remote/remote-desktop-listener-certificate-configurations).
# TermService runs as NETWORK SERVICE and must read the certificate's private key (same page),
# so before binding it grants NETWORK SERVICE (SID S-1-5-20) Read on the key file when it cannot
# read it yet (lib/certkey.ps1; `grant_key_read`, default true: an undo that binds the previous
# certificate back passes false and leaves every key alone). Refuses to bind a certificate
# whose key NETWORK SERVICE still cannot read. Answers the key grant it made (if any) and the
# binding, before/after. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
# fleet-include: certkey
$p = $ParamsJson | ConvertFrom-Json
$thumb = ([string]$p.thumbprint).ToUpperInvariant()
$grant = $true
if ($null -ne $p.grant_key_read) { $grant = [bool]$p.grant_key_read }
$cert = Get-MachineCert $thumb
if ($null -eq $cert) { throw "no certificate $thumb with a private key in LocalMachine\My or \Remote Desktop" }

$changes = @()
if ($grant) {
    # A key file that cannot be found is left as it is: whether NETWORK SERVICE reads it is unknown.
    $file = Get-CertKeyFile $cert
    if ($null -ne $file -and -not (Test-NetworkServiceRead $file)) {
        Grant-NetworkServiceRead $file
        $readable = Test-NetworkServiceRead $file
        if (-not $readable) {
            Revoke-NetworkServiceRead $file  # take back what did not help
            throw "NETWORK SERVICE still cannot read the private key of $thumb ($file): a Deny entry? Not binding it"
        }
        $changes += @{ target = "private key of ${thumb}: NETWORK SERVICE (S-1-5-20) Read"; before = $false; after = $true; changed = $true }
    }
}

$filter = "TerminalName='RDP-Tcp'"
$ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
$before = "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
if ($before -ne $thumb) {
    Set-CimInstance -InputObject $ts -Property @{ SSLCertificateSHA1Hash = $thumb }
}
$ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
$after = "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
$changes += @{ target = 'Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash'; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($changes) }
