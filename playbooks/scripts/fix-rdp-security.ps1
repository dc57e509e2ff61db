# fleet-script: fix.rdp_security
# fleet-version: 1
# Sets one RDP-Tcp security value through Win32_TSGeneralSetting's own method, not a raw
# registry write, so Windows validates it (SecurityLayer 2 is refused while MinEncryptionLevel
# is 1) and refuses a value Group Policy decides. Params: {"setting": "SecurityLayer" |
# "UserAuthentication" | "MinEncryptionLevel", "value": N}. Reports the RDP-Tcp registry value
# before and after (what gather.ps1 reads); a value already in place is left alone. The value
# is live only after TermService restarts (fix.service_restart, planned with it).
#   Methods and values: MicrosoftDocs/win32 desktop-src/TermServ/win32-tsgeneralsetting.md,
#   win32-tsgeneralsetting-setsecuritylayer.md, setuserauthenticationrequired-win32-tsgeneralsetting.md,
#   win32-tsgeneralsetting-setencryptionlevel.md; return codes:
#   desktop-src/TermServ/terminal-services-wmi-provider-error-codes.md
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$setting = [string]$p.setting
$rdpTcp = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'

# setting -> the method, its one parameter, the PolicySource* property and the valid values.
$known = @{
    SecurityLayer      = @{ Method = 'SetSecurityLayer'; Parameter = 'SecurityLayer'; Source = 'PolicySourceSecurityLayer'; Valid = @(0, 1, 2) }
    UserAuthentication = @{ Method = 'SetUserAuthenticationRequired'; Parameter = 'UserAuthenticationRequired'; Source = 'PolicySourceUserAuthenticationRequired'; Valid = @(0, 1) }
    MinEncryptionLevel = @{ Method = 'SetEncryptionLevel'; Parameter = 'MinEncryptionLevel'; Source = 'PolicySourceMinEncryptionLevel'; Valid = @(1, 2, 3, 4) }
}
# Validate everything before touching anything.
if (-not $known.ContainsKey($setting)) {
    throw "fix.rdp_security: unknown setting '$setting' (SecurityLayer, UserAuthentication or MinEncryptionLevel)"
}
$m = $known[$setting]
# A JSON integer arrives as [int] (5.1) or [long] (7); nothing else is coerced into one.
if ((($p.value -isnot [int]) -and ($p.value -isnot [long])) -or ($m.Valid -notcontains [int]$p.value)) {
    throw "fix.rdp_security: $setting must be one of $($m.Valid -join ', '), not '$($p.value)'"
}
$value = [int]$p.value

function Read-Value {
    # As gather.ps1 reads it: the RDP-Tcp DWORD, $null when absent.
    $v = (Get-Item -LiteralPath $rdpTcp).GetValue($setting)
    if ($null -eq $v) { return $null }
    return [int]$v
}

function Get-WbemName([long]$Code) {
    switch ($Code) {
        2147749889 { return 'WBEM_E_FAILED' }
        2147749890 { return 'WBEM_E_NOT_FOUND' }
        2147749896 { return 'WBEM_E_INVALID_PARAMETER' }
        2147749900 { return 'WBEM_E_NOT_SUPPORTED' }
        2147749910 { return 'WBEM_E_INVALID_OPERATION: a value set by Group Policy' }
        2147749923 { return 'WBEM_E_READ_ONLY' }
        2147749931 { return 'WBEM_E_VALUE_OUT_OF_RANGE' }
        2147749935 { return 'WBEM_E_INVALID_METHOD_PARAMETERS' }
    }
    return 'unknown WMI error'
}

$before = Read-Value
if ($before -ne $value) {
    $ts = Get-CimInstance -Namespace 'root/cimv2/TerminalServices' -ClassName Win32_TSGeneralSetting -Filter "TerminalName='RDP-Tcp'"
    # PolicySource*: 0 server, 1 Group Policy, 2 default. Windows refuses a policy-decided value.
    if ([int]$ts.($m.Source) -eq 1) {
        throw "fix.rdp_security: $setting is managed by Group Policy; change the GPO"
    }
    # "If the current Encryption Level is 1, then a value of 2 for SecurityLayer is not valid."
    if ($setting -eq 'SecurityLayer' -and $value -eq 2 -and [int]$ts.MinEncryptionLevel -eq 1) {
        throw 'fix.rdp_security: SecurityLayer 2 (SSL) is not compatible with MinEncryptionLevel 1 (Low): raise MinEncryptionLevel first'
    }
    $arguments = @{}
    $arguments[$m.Parameter] = [uint32]$value
    try {
        $r = Invoke-CimMethod -InputObject $ts -MethodName $m.Method -Arguments $arguments
    } catch {
        throw "fix.rdp_security: $($m.Method)($value) failed: $($_.Exception.Message)"
    }
    $code = [long]$r.ReturnValue
    if ($code -ne 0) {
        throw "fix.rdp_security: $($m.Method)($value) returned $code ($(Get-WbemName $code))"
    }
}
$after = Read-Value
if ($after -ne $value) {
    throw "fix.rdp_security: $($m.Method) reported success but RDP-Tcp $setting reads '$after', not $value"
}
$change = @{ target = "$rdpTcp\$setting"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
