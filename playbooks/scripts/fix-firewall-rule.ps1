# fleet-script: fix.firewall_rule
# fleet-version: 1
# Enables/disables a firewall rule and/or sets its profiles. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1: without this, arrays serialize as {"value":[...],"Count":n}.
try { Remove-TypeData -TypeName System.Array } catch { $null = $_ }

function Write-Frame($doc) {
    # One frame. Non-ASCII is escaped so it survives any console code page, and < > so no value
    # can fake a frame marker (Windows PowerShell's serializer escapes them, PowerShell 7's does not).
    $json = ConvertTo-Json -InputObject $doc -Depth 6 -Compress
    $escape = [System.Text.RegularExpressions.MatchEvaluator] { param($m) '\u{0:x4}' -f [int][char]$m.Value }
    Write-Output ('<<FLEET-JSON>>' + [regex]::Replace($json, '[^\x00-\x7F]|[<>]', $escape) + '<<FLEET-END>>')
}
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
$changes = @()

# Before/after are read from the ActiveStore, as gather.ps1 reads them: what is in effect. The
# change itself goes to the PersistentStore (the default of Enable-/Set-NetFirewallRule), which is
# activated at once; if a Group Policy rule of the same name wins, after shows it unchanged.
function Get-Rule { Get-NetFirewallRule -Name $name -PolicyStore ActiveStore }
$rule = Get-Rule
if ($null -ne $p.enabled) {
    $before = ("$($rule.Enabled)" -eq 'True')
    if ($before -ne [bool]$p.enabled) {
        if ([bool]$p.enabled) { Enable-NetFirewallRule -Name $name } else { Disable-NetFirewallRule -Name $name }
    }
    $after = ("$((Get-Rule).Enabled)" -eq 'True')
    $changes += @{ target = "firewall rule $name"; before = $before; after = $after; changed = ($before -ne $after) }
}
if ($null -ne $p.profiles) {
    $wanted = @($p.profiles | ForEach-Object { [string]$_ })
    $before = "$($rule.Profile)"
    if ($before -ne ($wanted -join ', ')) { Set-NetFirewallRule -Name $name -Profile $wanted }
    $after = "$((Get-Rule).Profile)"
    $changes += @{ target = "firewall rule $name Profile"; before = $before; after = $after; changed = ($before -ne $after) }
}
Write-Frame @{ changes = @($changes) }
