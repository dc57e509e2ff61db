# fleet-script: fix.w32time
# fleet-version: 2
# Points W32Time at the domain hierarchy or at NTP peers, makes sure it runs, resyncs; when the
# resync fails, puts back what it changed (Parameters Type/NtpServer, start type, state).
# Params: {"mode": "domhier"} or {"mode": "manual", "ntp_peers": "ntp1 ntp2,0x8"}, and
# "step": true to lift MaxPos/MaxNegPhaseCorrection for this one resync (restored after it).
# fleet decides the mode (fleet/checks/timesync.py); Group Policy sources are never planned.
# Reports W32Time {type, ntp_server, service, start_type} before/after, and the step if any.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$mode = [string]$p.mode
$peers = ([string]$p.ntp_peers).Trim()
$step = ($p.step -eq $true)
if ($mode -ne 'domhier' -and $mode -ne 'manual') { throw "fix.w32time: mode must be domhier or manual, not '$mode'" }
if ($mode -eq 'manual' -and -not $peers) { throw 'fix.w32time: mode manual needs ntp_peers' }
# Peers travel as one native argument; Windows PowerShell does not escape embedded quotes, so
# only what host names, addresses and ",0xN" flags are made of is accepted (fleet validates the
# entries: fleet/checks/timesync.py check_peer).
if ($peers -notmatch '^[A-Za-z0-9.:,_ \[\]-]*$') { throw 'fix.w32time: ntp_peers may only hold host names, addresses and ,0xN flags' }

# "Windows Time service tools and settings" (learn.microsoft.com/windows-server/networking/
# windows-time-service/windows-time-service-tools-and-settings): Parameters Type/NtpServer,
# Config MaxPos/MaxNegPhaseCorrection (seconds, 0xFFFFFFFF = always correct).
$ServiceKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time'
$NoLimit = -1  # 0xFFFFFFFF, as the Int32 a REG_DWORD holds (New-ItemProperty rejects 4294967295)

function Invoke-W32tm {
    # w32tm's standard output as one string; its exit code is in $global:LASTEXITCODE. Standard
    # error is dropped: with $ErrorActionPreference = 'Stop', Windows PowerShell turns native
    # stderr lines (redirected, or over remoting) into terminating errors.
    param([string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $lines = @(& w32tm.exe @Arguments 2>&1 | Where-Object {
            $_ -isnot [System.Management.Automation.ErrorRecord]
        } | ForEach-Object { [string]$_ })
    return ($lines -join "`n").Trim()
}

function Get-Value([string]$Key, [string]$Name) {
    # A registry value, or $null when absent.
    if (-not (Test-Path -LiteralPath $Key)) { return $null }
    return (Get-Item -LiteralPath $Key).GetValue($Name)
}

function ConvertTo-Unsigned($Value) {
    # A REG_DWORD reads as Int32: 0xFFFFFFFF (no limit) arrives as -1.
    if ($null -ne $Value -and $Value -lt 0) { return [long]$Value + 4294967296 }
    return $Value
}

function Set-Value([string]$Key, [string]$Name, $Value, [string]$Kind) {
    # Writes a value back, or removes it when it was absent ($null).
    if ($null -eq $Value) {
        if ((Get-Item -LiteralPath $Key).GetValueNames() -contains $Name) {
            Remove-ItemProperty -LiteralPath $Key -Name $Name
        }
    }
    else {
        New-ItemProperty -LiteralPath $Key -Name $Name -Value $Value -PropertyType $Kind -Force | Out-Null
    }
}

function Get-StartType {
    # ServiceController.StartType needs .NET 4.6.1 (empty on a stock Server 2012 R2), so
    # Win32_Service.StartMode (Boot, System, Auto, Manual, Disabled: win32-service.md) is the
    # fallback, as in gather.ps1. Names as Set-Service -StartupType takes them.
    $startType = [string](Get-Service -Name W32Time).StartType
    if (-not $startType) {
        $mode = [string](Get-CimInstance -ClassName Win32_Service -Filter "Name='W32Time'").StartMode
        if ($mode -eq 'Auto') { $startType = 'Automatic' } else { $startType = $mode }
    }
    return $startType
}

function Get-State {
    return [ordered]@{
        type       = Get-Value "$ServiceKey\Parameters" 'Type'
        ntp_server = Get-Value "$ServiceKey\Parameters" 'NtpServer'
        service    = [string](Get-Service -Name W32Time).Status
        start_type = Get-StartType
    }
}

function Restore-Limits($Saved) {
    Set-Value "$ServiceKey\Config" 'MaxPosPhaseCorrection' $Saved[0] 'DWord'
    Set-Value "$ServiceKey\Config" 'MaxNegPhaseCorrection' $Saved[1] 'DWord'
}

$before = Get-State
$saved = @{}
foreach ($name in @('Type', 'NtpServer')) { $saved[$name] = Get-Value "$ServiceKey\Parameters" $name }
$limits = @((Get-Value "$ServiceKey\Config" 'MaxPosPhaseCorrection'), (Get-Value "$ServiceKey\Config" 'MaxNegPhaseCorrection'))

function Restore-All {
    # Puts back what this script changed, so a failed resync leaves the host as it found it.
    Set-Value "$ServiceKey\Parameters" 'Type' $saved['Type'] 'String'
    Set-Value "$ServiceKey\Parameters" 'NtpServer' $saved['NtpServer'] 'String'
    if ($step) { Restore-Limits $limits }
    # A running service rereads the restored values now; a stopped one reads them when it
    # starts (and w32tm cannot reach it). A failed reread is said after the start type and the
    # service state are put back too.
    $reread = $null
    if ((Get-Service -Name W32Time).Status -eq 'Running') {
        $out = Invoke-W32tm @('/config', '/update')
        if ($global:LASTEXITCODE -ne 0) { $reread = "w32tm /config /update failed (exit code $global:LASTEXITCODE): $out" }
    }
    if ($before.start_type -and $before.start_type -ne (Get-StartType)) {
        Set-Service -Name W32Time -StartupType $before.start_type
    }
    if ($before.service -ne 'Running') { Stop-Service -Name W32Time -Force }
    if ($reread) { throw $reread }
}

try {
    if ($before.start_type -eq 'Disabled') { Set-Service -Name W32Time -StartupType Automatic }
    if ($before.service -ne 'Running') { Start-Service -Name W32Time }
    if ($mode -eq 'manual') {
        $out = Invoke-W32tm @('/config', "/manualpeerlist:$peers", '/syncfromflags:manual', '/update')
    }
    else {
        $out = Invoke-W32tm @('/config', '/syncfromflags:domhier', '/update')
    }
    if ($global:LASTEXITCODE -ne 0) { throw "w32tm /config failed (exit code $global:LASTEXITCODE): $out" }
    if ($step) {
        # A one-off step: W32Time logs instead of correcting beyond these limits.
        Set-Value "$ServiceKey\Config" 'MaxPosPhaseCorrection' $NoLimit 'DWord'
        Set-Value "$ServiceKey\Config" 'MaxNegPhaseCorrection' $NoLimit 'DWord'
    }
    Restart-Service -Name W32Time -Force
    # /resync [/rediscover] is the documented form (/force is not a w32tm option). Right after
    # the restart the service may hold no time sample yet ("no time data was available"), so
    # a failure is retried a few times before it counts.
    for ($try = 1; $try -le 5; $try++) {
        $out = Invoke-W32tm @('/resync', '/rediscover')
        if ($global:LASTEXITCODE -eq 0) { break }
        Start-Sleep -Seconds 2
    }
    if ($global:LASTEXITCODE -ne 0) { throw "w32tm /resync failed (exit code $global:LASTEXITCODE): $out" }
}
catch {
    $why = $_.Exception.Message
    try { Restore-All } catch { throw "$why; restoring the previous W32Time settings failed too: $($_.Exception.Message)" }
    throw "$why; the previous W32Time settings were restored"
}
if ($step) {
    Restore-Limits $limits
    $out = Invoke-W32tm @('/config', '/update')
    if ($global:LASTEXITCODE -ne 0) { throw "the clock was stepped, but W32Time did not reread its restored phase-correction limits (w32tm /config /update, exit code $global:LASTEXITCODE): $out" }
}
$after = Get-State
$changed = $false
foreach ($key in @('type', 'ntp_server', 'service', 'start_type')) {
    if ($before[$key] -ne $after[$key]) { $changed = $true }
}
$changes = @(@{ target = 'W32Time'; before = $before; after = $after; changed = $changed })
if ($step) {
    $kept = @{ max_pos_phase_correction = ConvertTo-Unsigned $limits[0]; max_neg_phase_correction = ConvertTo-Unsigned $limits[1] }
    $changes += @{
        target  = 'W32Time\Config MaxPos/MaxNegPhaseCorrection (lifted for one resync: clock stepped)'
        before  = $kept
        after   = $kept
        changed = $true
    }
}
Write-Frame @{ changes = $changes }
