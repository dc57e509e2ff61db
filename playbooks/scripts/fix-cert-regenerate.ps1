# fleet-script: fix.cert_regenerate
# fleet-version: 1
# Replaces the listener's self-signed certificate: deletes it from Cert:\LocalMachine\Remote
# Desktop, drops the RDP-Tcp binding, restarts SessionEnv and TermService (disruptive), and
# Windows issues and binds a new one. Acts only while the planned thumbprint is still bound
# (or, with no thumbprint, while nothing is), so a second run changes nothing.
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
        # Only ever a certificate of the Remote Desktop store (self-signed), and only by its exact path.
        $old = "Cert:\LocalMachine\Remote Desktop\$thumb"
        if ($thumb -match '^[0-9A-F]{40}$' -and (Test-Path -LiteralPath $old)) { Remove-Item -LiteralPath $old }
    }
    Remove-ItemProperty -LiteralPath $rdpTcp -Name SSLCertificateSHA1Hash -ErrorAction SilentlyContinue
    Restart-Service -Name SessionEnv -Force
    Restart-Service -Name TermService -Force
    # The listener issues and binds its new certificate as it comes up, not necessarily before
    # Restart-Service returns: wait (bounded) for the binding to move off the old one.
    for ($try = 0; $try -lt 15 -and (Get-Bound) -eq $before; $try++) { Start-Sleep -Seconds 2 }
}
$after = Get-Bound
$change = @{ target = "Cert:\LocalMachine\Remote Desktop\$thumb"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
