# fleet-script: fix.cert_regenerate
# fleet-version: 1
# Replaces the listener's self-signed certificate: deletes it with its private key from
# Cert:\LocalMachine\Remote Desktop, drops the RDP-Tcp binding, restarts SessionEnv and
# TermService (disruptive), and Windows issues and binds a new one. Acts only while the planned
# thumbprint is still bound (or, with no thumbprint, while nothing is), so a second run changes
# nothing.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$thumb = if ($p.thumbprint) { ([string]$p.thumbprint).ToUpperInvariant() } else { '' }
$filter = "TerminalName='RDP-Tcp'"
$rdpTcp = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'

function Get-Bound {
    $ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
    return "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
}

$before = Get-Bound
if ($before -eq $thumb) {
    if ($thumb) {
        # Only ever a certificate of the Remote Desktop store (self-signed), and only by its exact
        # path, with its private key: -DeleteKey is the Certificate provider's dynamic parameter of
        # Remove-Item (in the Cert: drive Remove-Item takes only -Path, -DeleteKey, -WhatIf,
        # -Confirm). It exists in Windows PowerShell 5.1 and again from PowerShell 7.1
        # (about_Certificate_Provider: MicrosoftDocs/PowerShell-Docs
        # reference/5.1/Microsoft.PowerShell.Security/About/about_Certificate_Provider.md and
        # reference/7.4/...; https://learn.microsoft.com/powershell/module/microsoft.powershell.security/about/about_certificate_provider).
        $old = "Cert:\LocalMachine\Remote Desktop\$thumb"
        if ($thumb -cmatch '^[0-9A-F]{40}$' -and (Test-Path -LiteralPath $old)) {
            $v = $PSVersionTable.PSVersion
            if ($v.Major -eq 7 -and $v.Minor -lt 1) { throw 'PowerShell 7.0 has no Remove-Item -DeleteKey; use Windows PowerShell 5.1 or PowerShell 7.1+' }
            Remove-Item -Path $old -DeleteKey
        }
    }
    # The pinned value goes when it is there; a failure to delete it stops the script.
    if ((Get-Item -LiteralPath $rdpTcp).GetValueNames() -contains 'SSLCertificateSHA1Hash') {
        Remove-ItemProperty -LiteralPath $rdpTcp -Name SSLCertificateSHA1Hash
    }
    Restart-Service -Name SessionEnv -Force
    Restart-Service -Name TermService -Force
    # The listener issues and binds its new certificate as it comes up, not necessarily before
    # Restart-Service returns: wait (bounded) for the binding to move off the old one. The old
    # certificate is gone by then: a binding that never moves is a failure, not "no change".
    for ($try = 0; $try -lt 15 -and (Get-Bound) -eq $before; $try++) { Start-Sleep -Seconds 2 }
    if ((Get-Bound) -eq $before) {
        throw "the listener bound no new self-signed certificate within 30 s of the old one's deletion and the restart of SessionEnv and TermService (see the TerminalServices-RemoteConnectionManager event log)"
    }
}
$after = Get-Bound
$change = @{ target = "Cert:\LocalMachine\Remote Desktop\$thumb"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
